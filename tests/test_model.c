/* test_model.c - the model as a whole: gradients of every parameter tensor
 * against finite differences, memorisation, KV-cache decoding against the
 * full forward pass, sampling determinism, training determinism and the
 * checkpoint loader's refusals. Includes srlm.c to reach its internals. */
#define SRLM_NO_MAIN
#include "../srlm.c"
#include "check.h"

static Config small_config(int n_kv_heads, int tied) {
    Config c;
    c.dim = 8; c.n_layers = 2; c.n_heads = 2; c.n_kv_heads = n_kv_heads; c.hidden_dim = 12;
    c.vocab_size = 11; c.max_seq_len = 8; c.tied = tied; c.rope_theta = 10000.0f; c.norm_eps = 1e-5f;
    return c;
}

static void make_model(Model *m, Config c, uint64_t seed, float scale) {
    size_t i;
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    model_init_random(m, seed);
    /* larger weights than training's init so every path carries gradient well above float noise */
    for (i = 0; i < m->n_params; i++) m->params[i] *= scale;
}

/* mean loss over rows with a target, accumulated in double */
static double batch_loss(Model *m, const int *in, const int *tg, int B, int T) {
    double s = 0.0;
    int n, cnt = 0;
    model_forward(m, in, tg, B, T, 0);
    for (n = 0; n < B * T; n++) if (tg[n] >= 0) { s += m->a.losses[n]; cnt++; }
    return s / cnt;
}

/* Every parameter tensor's analytic gradient against central differences.
 * For each tensor up to 24 random entries are probed with h = 1e-3 (the loss
 * is float: much smaller steps drown in rounding; weights are scaled so the
 * network is far from linear yet not saturated). The probe passes when
 * |fd - g| <= 2e-3 + 3e-2 |g| for each entry — a wrong sign, a dropped term or
 * a transposed index misses by O(|g|) on these weights — and the probed
 * gradients are not all ~0 (which would make the comparison vacuous). */
static void check_model_gradients(int kvh, int tied) {
    Model m;
    int B = 2, T = 6, N = B * T, n, t;
    int in[12], tg[12];
    float dl[12];
    size_t sizes[N_PTENSORS], off = 0;
    Rng r;
    int cnt = 0;
    make_model(&m, small_config(kvh, tied), 7, 3.0f);
    rng_init(&r, 99, 1);
    for (n = 0; n < N; n++) { in[n] = (int)rng_below(&r, 11); tg[n] = (n % 5 == 2) ? -1 : (int)rng_below(&r, 11); }
    for (n = 0; n < N; n++) cnt += tg[n] >= 0;
    for (n = 0; n < N; n++) dl[n] = tg[n] >= 0 ? 1.0f / cnt : 0.0f;
    model_alloc_grads(&m);
    memset(m.grads, 0, m.n_params * sizeof(float));
    model_forward(&m, in, tg, B, T, 0);
    model_backward(&m, dl, 0);
    param_sizes(&m.cfg, sizes);
    for (t = 0; t < N_PTENSORS; t++) {
        int probe, bad = 0;
        double maxg = 0.0;
        if (sizes[t] == 0) { off += sizes[t]; continue; }
        for (probe = 0; probe < 24; probe++) {
            size_t i = off + rng_below(&r, (uint32_t)sizes[t]);
            float save = m.params[i], h = 1e-3f;
            double lp, lm, fd, g = m.grads[i];
            m.params[i] = save + h; lp = batch_loss(&m, in, tg, B, T);
            m.params[i] = save - h; lm = batch_loss(&m, in, tg, B, T);
            m.params[i] = save;
            fd = (lp - lm) / (2.0 * h);
            if (fabs(fd - g) > 2e-3 + 3e-2 * fabs(g)) {
                if (bad++ < 3) printf("  %s[%lu]: analytic %.6g, numeric %.6g\n", param_names[t], (unsigned long)(i - off), g, fd);
            }
            if (fabs(g) > maxg) maxg = fabs(g);
        }
        CHECK(bad == 0, "tensor %s (kv_heads %d, tied %d): %d of 24 probes disagree", param_names[t], kvh, tied, bad);
        CHECK(maxg > 1e-3, "tensor %s: probed gradients all ~0 (max %.3g), test would be vacuous", param_names[t], maxg);
        off += sizes[t];
    }
    model_free(&m);
}

static void test_gradients_mha_untied(void) { check_model_gradients(2, 0); }
static void test_gradients_gqa_untied(void) { check_model_gradients(1, 0); }
static void test_gradients_mha_tied(void) { check_model_gradients(2, 1); }
static void test_gradients_gqa_tied(void) { check_model_gradients(1, 1); }

/* Dropout on: the loss is still differentiated exactly for the fixed masks. */
static void test_gradients_with_dropout(void) {
    Model m;
    int B = 2, T = 5, N = 10, n, probe, bad = 0;
    int in[10], tg[10];
    float dl[10];
    Rng r;
    make_model(&m, small_config(1, 0), 3, 3.0f);
    rng_init(&r, 5, 1);
    for (n = 0; n < N; n++) { in[n] = (int)rng_below(&r, 11); tg[n] = (int)rng_below(&r, 11); dl[n] = 0.1f; }
    model_alloc_grads(&m);
    memset(m.grads, 0, m.n_params * sizeof(float));
    m.dropout = 0.3f;
    m.dropout_seed = 1234;
    model_forward(&m, in, tg, B, T, 1);
    model_backward(&m, dl, 1);
    for (probe = 0; probe < 40; probe++) {
        size_t i = rng_below(&r, (uint32_t)m.n_params);
        float save = m.params[i], h = 1e-3f;
        double lp = 0, lm = 0, fd, g = m.grads[i];
        m.params[i] = save + h; model_forward(&m, in, tg, B, T, 1); for (n = 0; n < N; n++) lp += 0.1 * m.a.losses[n];
        m.params[i] = save - h; model_forward(&m, in, tg, B, T, 1); for (n = 0; n < N; n++) lm += 0.1 * m.a.losses[n];
        m.params[i] = save;
        fd = (lp - lm) / (2.0 * h);
        if (fabs(fd - g) > 2e-3 + 3e-2 * fabs(g)) bad++;
    }
    CHECK(bad == 0, "%d of 40 probes disagree with dropout on", bad);
    model_free(&m);
}

/* A fixed batcher: the same 4 sequences every step (memorisation). */
typedef struct { int seqs[4][16]; } FixedData;
static int fixed_next(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    FixedData *fd = self->ctx;
    int b, t;
    (void)step;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) {
            inputs[b * T + t] = fd->seqs[b % 4][t];
            /* the first token after BOS is a free choice among 4: not learnable, not counted */
            targets[b * T + t] = (t == 0 || t + 1 >= 16) ? -1 : fd->seqs[b % 4][t + 1];
        }
    return T;
}

static void test_memorisation(void) {
    Model m;
    Config c = small_config(2, 0);
    TrainConfig t = train_config_default();
    FixedData fd;
    Batcher bt;
    Rng r;
    int b, i;
    float loss;
    c.dim = 32; c.n_heads = 4; c.n_kv_heads = 2; c.hidden_dim = 64; c.vocab_size = 20; c.max_seq_len = 16;
    make_model(&m, c, 1, 1.0f);
    rng_init(&r, 11, 2);
    for (b = 0; b < 4; b++) {
        fd.seqs[b][0] = 0;
        fd.seqs[b][1] = 1 + b; /* distinct first tokens make the rest determined */
        for (i = 2; i < 16; i++) fd.seqs[b][i] = (int)rng_below(&r, 20);
    }
    bt.next = fixed_next; bt.ctx = &fd;
    t.steps = 300; t.batch = 4; t.seq = 15; t.lr = 1e-2f; t.lr_min = 1e-3f; t.warmup = 10; t.weight_decay = 0.0f;
    t.log_every = 0;
    loss = train_model(&m, &t, &bt, "memorise");
    CHECK(loss < 0.05f, "memorisation loss %.4f, want < 0.05", (double)loss);
    model_free(&m);
}

/* Decoder logits must equal the training forward pass's, bit for bit, at
 * every position: prefilled in one step, fed token by token, and with two
 * sequences interleaved in one batch. */
static void test_kv_cache_matches_forward(void) {
    Model m;
    Decoder d;
    Config c = small_config(1, 0);
    int T = 8, V = 11, t, in[16], pos[16], slot[16], bad_prefill = 0, bad_step = 0, bad_pair = 0;
    Rng r;
    float *full;
    c.max_seq_len = T;
    make_model(&m, c, 21, 10.0f);
    rng_init(&r, 8, 1);
    for (t = 0; t < 2 * T; t++) in[t] = (int)rng_below(&r, (uint32_t)V);
    model_forward(&m, in, NULL, 2, T, 0);
    full = xmalloc((size_t)2 * T * V * sizeof(float));
    memcpy(full, m.a.logits, (size_t)2 * T * V * sizeof(float));
    decoder_init(&d, &m.cfg, 2, 2 * T);
    for (t = 0; t < T; t++) { pos[t] = t; slot[t] = 0; }
    decoder_step(&m, &d, in, pos, slot, T);
    if (memcmp(d.logits, full, (size_t)T * V * sizeof(float)) != 0) bad_prefill = 1;
    for (t = 0; t < T; t++) {
        int p = t, s = 1;
        decoder_step(&m, &d, &in[t], &p, &s, 1);
        if (memcmp(d.logits, full + (size_t)t * V, (size_t)V * sizeof(float)) != 0) bad_step++;
    }
    /* both sequences, token by token, sharing each step */
    for (t = 0; t < T; t++) {
        int tk[2], ps[2], sl[2];
        tk[0] = in[t]; tk[1] = in[T + t]; ps[0] = ps[1] = t; sl[0] = 0; sl[1] = 1;
        decoder_step(&m, &d, tk, ps, sl, 2);
        if (memcmp(d.logits, full + (size_t)t * V, (size_t)V * sizeof(float)) != 0 ||
            memcmp(d.logits + V, full + (size_t)(T + t) * V, (size_t)V * sizeof(float)) != 0) bad_pair++;
    }
    CHECK(!bad_prefill, "prefill logits differ from the full forward pass");
    CHECK(bad_step == 0, "%d positions differ token by token", bad_step);
    CHECK(bad_pair == 0, "%d positions differ with two sequences per step", bad_pair);
    free(full);
    decoder_free(&d);
    model_free(&m);
}

/* Greedy generation equals the argmax of the full forward pass at every position. */
static void test_greedy_equals_argmax(void) {
    Model m;
    Decoder d;
    Config c = small_config(2, 1);
    GenConfig g;
    int prompt[3] = {1, 5, 7}, *pp = prompt, plen = 3, *out, olen, seq[16], n, t, bad = 0;
    uint64_t seed = 1;
    c.max_seq_len = 16;
    make_model(&m, c, 4, 10.0f);
    g.max_new = 13; g.temperature = 0.0f; g.top_p = 1.0f; g.stops = NULL; g.n_stops = 0;
    decoder_init(&d, &m.cfg, 1, 16);
    generate(&m, &d, 1, &pp, &plen, &seed, &g, &out, &olen);
    CHECK(olen == 13, "generated %d tokens, want 13", olen);
    n = 3 + olen;
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + 3, out, (size_t)olen * sizeof(int));
    model_forward(&m, seq, NULL, 1, n, 0);
    for (t = 2; t < n - 1; t++) {
        const float *lg = m.a.logits + (size_t)t * c.vocab_size;
        int v, best = 0;
        for (v = 1; v < c.vocab_size; v++) if (lg[v] > lg[best]) best = v;
        if (best != seq[t + 1]) bad++;
    }
    CHECK(bad == 0, "%d greedy tokens differ from the full-forward argmax", bad);
    free(out);
    decoder_free(&d);
    model_free(&m);
}

static void test_sampling_seeds(void) {
    Model m;
    Decoder d;
    Config c = small_config(2, 0);
    GenConfig g;
    int prompt[1] = {1}, *pp[3], plen[3] = {1, 1, 1}, *out[3], olen[3], i;
    uint64_t seeds[3] = {42, 42, 43};
    c.max_seq_len = 64; c.vocab_size = 50;
    make_model(&m, c, 9, 3.0f);
    g.max_new = 60; g.temperature = 1.0f; g.top_p = 0.9f; g.stops = NULL; g.n_stops = 0;
    for (i = 0; i < 3; i++) pp[i] = prompt;
    decoder_init(&d, &m.cfg, 2, 64); /* 2 slots: the third sequence runs in a second batch */
    generate(&m, &d, 3, pp, plen, seeds, &g, out, olen);
    CHECK(olen[0] == olen[1] && memcmp(out[0], out[1], (size_t)olen[0] * sizeof(int)) == 0,
          "same seed gave different samples");
    CHECK(olen[0] != olen[2] || memcmp(out[0], out[2], (size_t)olen[0] * sizeof(int)) != 0,
          "different seeds gave the same 60 tokens");
    for (i = 0; i < 3; i++) free(out[i]);
    decoder_free(&d);
    model_free(&m);
}

/* Sequences that share one prompt array are prefilled once; the result must
 * equal generating each from its own copy, across a batch boundary too. */
static void test_shared_prefill_equals_separate(void) {
    Model m;
    Decoder d1, d2;
    Config c = small_config(2, 0);
    GenConfig g;
    int prompt[5] = {1, 4, 2, 8, 5}, copies[5][5], *shared[5], *sep[5], plen[5], *o1[5], *o2[5], l1[5], l2[5], i, same = 1;
    uint64_t seeds[5] = {1, 2, 3, 4, 5};
    c.max_seq_len = 40; c.vocab_size = 30;
    make_model(&m, c, 12, 3.0f);
    g.max_new = 30; g.temperature = 0.8f; g.top_p = 0.95f; g.stops = NULL; g.n_stops = 0;
    for (i = 0; i < 5; i++) { shared[i] = prompt; memcpy(copies[i], prompt, sizeof prompt); sep[i] = copies[i]; plen[i] = 5; }
    decoder_init(&d1, &m.cfg, 3, 4); /* 3 slots, 4 rows: sharing crosses a batch and a prefill flush */
    decoder_init(&d2, &m.cfg, 5, 64);
    generate(&m, &d1, 5, shared, plen, seeds, &g, o1, l1);
    generate(&m, &d2, 5, sep, plen, seeds, &g, o2, l2);
    for (i = 0; i < 5; i++) {
        if (l1[i] != l2[i] || memcmp(o1[i], o2[i], (size_t)l1[i] * sizeof(int)) != 0) same = 0;
        free(o1[i]); free(o2[i]);
    }
    CHECK(same, "shared-prefix generation differs from separate prompts");
    decoder_free(&d1); decoder_free(&d2);
    model_free(&m);
}

/* lm_rows_only (training) runs the output layer on the rows with a target
 * only; losses and every gradient must be bit-identical to the full pass, for
 * tied and untied output layers, with and without dropout, and with most rows
 * masked as in a judge example. */
static void test_lm_rows_only_same_bits(void) {
    int tied, drop, n, bad = 0;
    for (tied = 0; tied < 2; tied++)
        for (drop = 0; drop < 2; drop++) {
            Model m;
            int B = 3, T = 8, N = B * T, in[24], tg[24], cnt = 0;
            float dl[24], *g_full, *loss_full;
            Rng r;
            Config c = small_config(1, tied);
            make_model(&m, c, 31 + (uint64_t)tied, 3.0f);
            rng_init(&r, 5, 1);
            for (n = 0; n < N; n++) { in[n] = (int)rng_below(&r, 11); tg[n] = n % T < 5 ? -1 : (int)rng_below(&r, 11); }
            tg[N - 1] = -1; /* a padded end */
            for (n = 0; n < N; n++) cnt += tg[n] >= 0;
            for (n = 0; n < N; n++) dl[n] = tg[n] >= 0 ? 1.0f / cnt : 0.0f;
            model_alloc_grads(&m);
            m.dropout = drop ? 0.2f : 0.0f; m.dropout_seed = 77;
            g_full = xmalloc(m.n_params * sizeof(float)); loss_full = xmalloc((size_t)N * sizeof(float));
            memset(m.grads, 0, m.n_params * sizeof(float));
            model_forward(&m, in, tg, B, T, 1);
            memcpy(loss_full, m.a.losses, (size_t)N * sizeof(float));
            model_backward(&m, dl, 1);
            memcpy(g_full, m.grads, m.n_params * sizeof(float));
            m.lm_rows_only = 1;
            memset(m.grads, 0, m.n_params * sizeof(float));
            model_forward(&m, in, tg, B, T, 1);
            CHECK(m.n_rows_t == cnt, "packed %d rows, want %d", m.n_rows_t, cnt);
            if (memcmp(loss_full, m.a.losses, (size_t)N * sizeof(float)) != 0) bad++;
            model_backward(&m, dl, 1);
            if (memcmp(g_full, m.grads, m.n_params * sizeof(float)) != 0) bad++;
            free(g_full); free(loss_full);
            model_free(&m);
        }
    CHECK(bad == 0, "lm_rows_only changed %d of 8 loss/gradient vectors", bad);
}

/* Prompts that share an opening with the batch's first prompt (of any length,
 * including all but the last token, and none) take it from the first slot's
 * cache; every sequence must equal generating it alone in a one-slot decoder. */
static void test_shared_opening_equals_alone(void) {
    Model m;
    Decoder d, d1;
    Config c = small_config(2, 0);
    GenConfig g;
    int p0[6] = {1, 4, 2, 8, 5, 7}, p1[6] = {1, 4, 2, 8, 5, 9}, p2[3] = {1, 4, 3}, p3[8] = {1, 4, 2, 8, 5, 7, 6, 2};
    int p4[2] = {6, 1}, p5[4] = {1, 4, 2, 8};
    int *pr[7] = {p0, p1, p2, p3, p4, p5, p5}, plen[7] = {6, 6, 3, 8, 2, 4, 4}, *o[7], ol[7], *a, al, i, same = 1;
    uint64_t seeds[7] = {11, 12, 13, 14, 15, 16, 17};
    c.max_seq_len = 48; c.vocab_size = 30;
    make_model(&m, c, 21, 3.0f);
    /* hot sampling over 30 tokens: top-p keeps most of them */
    g.max_new = 30; g.temperature = 4.0f; g.top_p = 0.97f; g.stops = NULL; g.n_stops = 0;
    decoder_init(&d, &m.cfg, 4, 5); /* 4 slots, 5 rows: a second batch and many prefill flushes */
    decoder_init(&d1, &m.cfg, 1, 64);
    generate(&m, &d, 7, pr, plen, seeds, &g, o, ol);
    for (i = 0; i < 7; i++) {
        generate(&m, &d1, 1, &pr[i], &plen[i], &seeds[i], &g, &a, &al);
        if (al != ol[i] || memcmp(a, o[i], (size_t)al * sizeof(int)) != 0) same = 0;
        free(a); free(o[i]);
    }
    CHECK(same, "a prompt that shares the first prompt's opening generates differently than alone");
    decoder_free(&d); decoder_free(&d1);
    model_free(&m);
}

/* sample_token finds the top-p set by sorting only the tokens of the top
 * exponents (top_p_prefix); it must draw exactly what sorting every token
 * did (the code it replaced, kept here as the reference), and find the same
 * prefix as top_p_prefix_sorted on every kind of distribution. */
static int sample_token_sorted(const float *logits, int V, float temperature, float top_p, Rng *r, float *probs, int *idx) {
    int i, best = 0, kept;
    float maxv, sum = 0.0f, cum = 0.0f, target, acc = 0.0f;
    for (i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (temperature <= 0.0f) return best;
    maxv = logits[best];
    for (i = 0; i < V; i++) { probs[i] = ts_expf((logits[i] - maxv) / temperature); sum += probs[i]; }
    for (i = 0; i < V; i++) probs[i] /= sum;
    if (top_p < 1.0f) {
        argsort_desc(idx, probs, V);
        for (kept = 0; kept < V; ) { cum += probs[idx[kept++]]; if (cum >= top_p) break; }
    } else {
        for (i = 0; i < V; i++) { idx[i] = i; cum += probs[i]; }
        kept = V;
    }
    target = rng_uniform(r) * cum;
    for (i = 0; i < kept; i++) { acc += probs[idx[i]]; if (acc > target) return idx[i]; }
    return idx[kept - 1];
}

static void test_top_p_prefix_equals_sort(void) {
    enum { V = 768 };
    static float logits[V], probs[V], p2[V];
    static int idx[V], idx2[V];
    static uint64_t keys[2 * V];
    int i, trial, diff = 0, pdiff = 0, n = 0;
    Rng g, r1, r2;
    rng_init(&g, 99, RNG_STREAM_SAMPLE);
    rng_init(&r1, 5, RNG_STREAM_SAMPLE);
    rng_init(&r2, 5, RNG_STREAM_SAMPLE);
    for (trial = 0; trial < 4000; trial++) {
        int v = trial % 5 == 0 ? 5 : trial % 5 == 1 ? 200 : V, kind = (trial / 5) % 4;
        float T = trial % 3 == 0 ? 0.3f : trial % 3 == 1 ? 1.0f : 6.0f;
        float p = trial % 4 == 0 ? 0.5f : trial % 4 == 1 ? 0.9f : trial % 4 == 2 ? 0.999f : 1.0f;
        for (i = 0; i < v; i++) {
            float u = rng_uniform(&g);
            if (kind == 0) logits[i] = (float)(int)(u * 8.0f) * 0.5f;              /* many ties */
            else if (kind == 1) logits[i] = u * 0.01f;                            /* nearly flat */
            else if (kind == 2) logits[i] = i == (trial * 7) % v ? 30.0f : u;     /* one sure token */
            else logits[i] = (u - 0.5f) * 40.0f;                                   /* wide: many probabilities 0 */
        }
        if (sample_token(logits, v, T, p, &r1, probs, idx, keys) != sample_token_sorted(logits, v, T, p, &r2, p2, idx2)) diff++;
    }
    CHECK(diff == 0, "top-p by exponent buckets drew %d of 4000 tokens differently from the full sort", diff);
    /* the prefix itself, also on probabilities the softmax never makes: NaN, negative, -0, inf, denormals */
    for (trial = 0; trial < 3000; trial++) {
        int v = 1 + trial % 300, ka, kb;
        float p = trial % 3 == 0 ? 0.5f : trial % 3 == 1 ? 0.9f : 0.9999f;
        for (i = 0; i < v; i++) probs[i] = (float)(int)(rng_uniform(&g) * 6.0f) / (float)v;
        if (trial % 7 == 0) probs[trial % v] = f32_from_bits(0x7fc00000u);
        if (trial % 11 == 0) probs[(trial / 11) % v] = -0.0f;
        if (trial % 13 == 0) probs[(trial / 13) % v] = f32_from_bits(0x00000003u);
        if (trial % 17 == 0) probs[(trial / 17) % v] = f32_from_bits(0x7f800000u);
        ka = top_p_prefix(probs, v, p, idx, keys);
        kb = top_p_prefix_sorted(probs, v, p, idx2);
        if (ka != kb || memcmp(idx, idx2, (size_t)ka * sizeof(int)) != 0) pdiff++;
        n += ka;
    }
    CHECK(pdiff == 0, "top_p_prefix differs from the full sort on %d of 3000 probability vectors", pdiff);
    CHECK(n > 3000, "the prefixes kept %d tokens in all: the comparison saw no real prefixes", n);
}

/* top-p keeps exactly the smallest high-probability prefix */
static void test_top_p_support(void) {
    float logits[5] = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f}, probs[5];
    int idx[5], seen[5] = {0}, i;
    uint64_t keys[10];
    Rng r;
    rng_init(&r, 3, RNG_STREAM_SAMPLE);
    /* probs: ~[.08,.40,.15,.40,.03]; top_p .5 keeps {1,3} (ties by index) */
    for (i = 0; i < 2000; i++) seen[sample_token(logits, 5, 1.0f, 0.5f, &r, probs, idx, keys)]++;
    CHECK(seen[0] == 0 && seen[2] == 0 && seen[4] == 0, "top-p 0.5 sampled outside {1,3}: %d %d %d", seen[0], seen[2], seen[4]);
    CHECK(seen[1] > 800 && seen[3] > 800, "top-p 0.5 unbalanced: %d %d", seen[1], seen[3]);
    CHECK(sample_token(logits, 5, 0.0f, 0.9f, &r, probs, idx, keys) == 1, "greedy must pick the lowest index of equal maxima");
}

static void train_bytes(Model *m, uint64_t seed, Buf *out) {
    static const char *text = "the cat sat on the mat. the dog sat on the log. a cat and a dog. ";
    Config c = small_config(2, 0);
    TrainConfig t = train_config_default();
    int tokens[256], i;
    StreamData sd;
    Batcher bt;
    for (i = 0; i < 256; i++) tokens[i] = (unsigned char)text[i % 65];
    c.dim = 16; c.vocab_size = 264; c.max_seq_len = 16; c.hidden_dim = 24;
    memset(m, 0, sizeof *m);
    m->cfg = c;
    model_init_buffers(m);
    model_init_random(m, seed);
    sd.tokens = tokens; sd.n = 256; sd.seed = seed;
    bt.next = stream_next; bt.ctx = &sd;
    t.steps = 12; t.batch = 3; t.seq = 16; t.log_every = 0; t.dropout = 0.1f;
    train_model(m, &t, &bt, "det");
    ckpt_serialize(out, m, "test");
}

/* prompt-like rows: the first half of every other sequence has no target */
static int masked_next(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    Batcher inner = *self;
    int b, t;
    inner.next = stream_next;
    T = stream_next(&inner, step, inputs, targets, B, T);
    for (b = 0; b < B; b += 2) for (t = 0; t < T / 2; t++) targets[b * T + t] = -1;
    return T;
}

static void train_micro_bytes(int tied, int micro_rows, Buf *out, int *kept) {
    static const char *text = "the cat sat on the mat. the dog sat on the log. a cat and a dog. ";
    Config c = small_config(2, tied);
    TrainConfig t = train_config_default();
    int tokens[256], i;
    StreamData sd;
    Batcher bt;
    Model m;
    for (i = 0; i < 256; i++) tokens[i] = (unsigned char)text[i % 65];
    c.dim = 16; c.vocab_size = 264; c.max_seq_len = 16; c.hidden_dim = 24;
    memset(&m, 0, sizeof m);
    m.cfg = c;
    model_init_buffers(&m);
    model_init_random(&m, 7);
    sd.tokens = tokens; sd.n = 256; sd.seed = 7;
    bt.next = masked_next; bt.ctx = &sd;
    t.steps = 6; t.batch = 5; t.seq = 16; t.log_every = 0; t.dropout = 0.1f; t.micro_rows = micro_rows;
    train_model(&m, &t, &bt, "micro");
    if (kept) *kept = m.keep;
    ckpt_serialize(out, &m, "test");
    model_free(&m);
}

/* micro-batches give the bytes of one whole-batch forward/backward: with
 * dropout, target-less rows, tied and untied heads, even and uneven splits */
static void test_micro_batches(void) {
    int tied, k, splits[3] = {16, 32, 48}; /* rows: 1, 2 (2+2+1) and 3 (3+2) sequences of 16 */
    for (tied = 0; tied <= 1; tied++) {
        Buf whole = {0, 0, 0};
        train_micro_bytes(tied, 0, &whole, NULL);
        for (k = 0; k < 3; k++) {
            Buf part = {0, 0, 0};
            train_micro_bytes(tied, splits[k], &part, NULL);
            CHECK(part.n == whole.n && memcmp(part.p, whole.p, whole.n) == 0,
                  "micro-batches of %d rows (tied %d) changed the checkpoint", splits[k], tied);
            free(part.p);
        }
        free(whole.p);
    }
}

/* backward on the values forward kept (ln1, ln2, the gate, attention probabilities) gives the
 * bytes of backward recomputing them: with dropout, tied and untied, whole and micro-batches */
static void test_keep_equals_recompute(void) {
    int tied, micro, kept, lean_kept;
    for (tied = 0; tied <= 1; tied++)
        for (micro = 0; micro <= 32; micro += 32) {
            Buf keep = {0, 0, 0}, lean = {0, 0, 0};
            train_micro_bytes(tied, micro, &keep, &kept);
            keep_max_floats = 0;
            train_micro_bytes(tied, micro, &lean, &lean_kept);
            keep_max_floats = KEEP_MAX_FLOATS;
            CHECK(kept == 1 && lean_kept == 0, "keep flags %d (default) and %d (no budget)", kept, lean_kept);
            CHECK(keep.n == lean.n && memcmp(keep.p, lean.p, keep.n) == 0,
                  "kept activations changed the checkpoint (tied %d, micro-batch rows %d)", tied, micro);
            free(keep.p); free(lean.p);
        }
}

static void test_training_deterministic(void) {
    Model a, b, c;
    Buf ba = {0, 0, 0}, bb = {0, 0, 0}, bc = {0, 0, 0};
    train_bytes(&a, 5, &ba);
    train_bytes(&b, 5, &bb);
    train_bytes(&c, 6, &bc);
    CHECK(ba.n == bb.n && memcmp(ba.p, bb.p, ba.n) == 0, "same run twice gave different checkpoint bytes");
    CHECK(ba.n != bc.n || memcmp(ba.p, bc.p, ba.n) != 0, "different seeds gave identical checkpoints");
    free(ba.p); free(bb.p); free(bc.p);
    model_free(&a); model_free(&b); model_free(&c);
}

/* The loader refuses every kind of damage with a reason, never loading silently. */
static void test_checkpoint_refusals(void) {
    Model m, l;
    Buf b = {0, 0, 0};
    const char *why;
    uint8_t *x;
    size_t cuts[] = {0, 4, 8, 11, 30, 60, 70, 200}, i;
    uint8_t dg[32];
    make_model(&m, small_config(1, 0), 1, 1.0f);
    ckpt_serialize(&b, &m, "meta");
    why = ckpt_parse(&l, b.p, b.n, NULL);
    CHECK(why == NULL, "a good checkpoint was refused: %s", why ? why : "");
    if (!why) {
        CHECK(memcmp(l.params, m.params, m.n_params * sizeof(float)) == 0, "loaded parameters differ");
        model_free(&l);
    }
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        why = ckpt_parse(&l, b.p, cuts[i], NULL);
        CHECK(why != NULL, "truncation at %lu accepted", (unsigned long)cuts[i]);
    }
    CHECK(ckpt_parse(&l, b.p, b.n - 1, NULL) != NULL, "missing last byte accepted");
    x = xmalloc(b.n + 1);
    memcpy(x, b.p, b.n); x[0] = 'X';
    why = ckpt_parse(&l, x, b.n, NULL);
    CHECK(why && strstr(why, "magic"), "wrong magic: %s", why ? why : "accepted");
    memcpy(x, b.p, b.n); le_put_u32(x + 8, 2);
    why = ckpt_parse(&l, x, b.n, NULL);
    CHECK(why && strstr(why, "version 2"), "future version: %s", why ? why : "accepted");
    memcpy(x, b.p, b.n); x[b.n / 2] ^= 0x10;
    why = ckpt_parse(&l, x, b.n, NULL);
    CHECK(why && strstr(why, "checksum"), "flipped byte: %s", why ? why : "accepted");
    memcpy(x, b.p, b.n); x[b.n] = 0;
    why = ckpt_parse(&l, x, b.n + 1, NULL);
    CHECK(why && strstr(why, "trailing"), "trailing byte: %s", why ? why : "accepted");
    memcpy(x, b.p, b.n); le_put_u32(x + 12, 7); /* dim 7 not divisible by heads */
    sha256(x, b.n - 32, dg); memcpy(x + b.n - 32, dg, 32);
    why = ckpt_parse(&l, x, b.n, NULL);
    CHECK(why && strstr(why, "config"), "bad config: %s", why ? why : "accepted");
    /* a NaN weight with a valid checksum */
    m.params[m.n_params / 3] = f32_from_bits(0x7fc00000u);
    free(b.p); b.p = NULL; b.n = b.cap = 0;
    ckpt_serialize(&b, &m, "meta");
    why = ckpt_parse(&l, b.p, b.n, NULL);
    CHECK(why && strstr(why, "non-finite"), "NaN weight: %s", why ? why : "accepted");
    free(x); free(b.p);
    model_free(&m);
}

/* ckpt_load's one-pass streaming reader (ckpt_load_stream) loads exactly
 * what the careful parser loads, with the same file digest, across several
 * of its 1 MB chunks; and it refuses (returns -1, keeping nothing) every
 * damaged file the careful parser refuses, so ckpt_load falls back to it
 * and the fault is named there. */
static int write_bytes(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static void test_checkpoint_stream_load(void) {
    Model m, l, r;
    Buf b = {0, 0, 0};
    char tmpl[] = "/tmp/srlm_ckpt_XXXXXX", path[96], *meta;
    uint8_t dg[32], whole[32], *x;
    Config c = small_config(2, 0);
    size_t i, cuts[] = {0, 7, 30, 57, 4200, 0, 0, 0};
    c.dim = 64; c.n_heads = 4; c.hidden_dim = 160; c.vocab_size = 3000; /* 400K params: two chunks */
    make_model(&m, c, 3, 1.0f);
    meta = xmalloc(5000);                   /* longer than the reader's 4 KB metadata buffer */
    memset(meta, 'm', 4999); meta[4999] = 0;
    ckpt_serialize(&b, &m, meta);
    CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/m.ckpt", tmpl);
    CHECK(write_bytes(path, b.p, b.n) == 0, "write %s", path);
    CHECK(ckpt_load_stream(&l, path, dg) == 0, "a sound checkpoint was refused by the streaming reader");
    CHECK(ckpt_parse(&r, b.p, b.n, NULL) == NULL, "careful parser refused it");
    sha256(b.p, b.n, whole);
    CHECK(l.n_params == r.n_params && memcmp(l.params, r.params, r.n_params * sizeof(float)) == 0,
          "streamed parameters differ from the careful parser's");
    CHECK(memcmp(dg, whole, 32) == 0, "streamed file digest differs from sha256 of the file");
    CHECK(memcmp(l.rope_cos, r.rope_cos, (size_t)c.max_seq_len * (size_t)(cfg_head_dim(&c) / 2) * sizeof(float)) == 0,
          "rope tables differ");
    model_free(&l); model_free(&r);
    /* every kind of damage: refused here, refused by the careful parser too */
    x = xmalloc(b.n + 1);
    cuts[5] = b.n / 2; cuts[6] = b.n - 32; cuts[7] = b.n - 1;
    for (i = 0; i < sizeof cuts / sizeof cuts[0] + 6; i++) {
        size_t n = b.n;
        memcpy(x, b.p, b.n);
        if (i < sizeof cuts / sizeof cuts[0]) n = cuts[i];
        else switch (i - sizeof cuts / sizeof cuts[0]) {
            case 0: x[0] = 'X'; break;                               /* magic */
            case 1: le_put_u32(x + 8, 2); break;                     /* version */
            case 2: x[b.n - 40] ^= 0x01; break;                      /* a parameter bit */
            case 3: x[b.n - 1] ^= 0x80; break;                       /* the checksum */
            case 4: x[b.n] = 0; n = b.n + 1; break;                  /* a trailing byte */
            case 5: le_put_u32(x + CKPT_HEADER_BYTES, 4998); break;  /* metadata length off by one */
        }
        CHECK(write_bytes(path, x, n) == 0, "write");
        CHECK(ckpt_load_stream(&l, path, dg) == -1, "damage %lu accepted by the streaming reader", (unsigned long)i);
        CHECK(ckpt_parse(&r, x, n, NULL) != NULL, "damage %lu accepted by the careful parser", (unsigned long)i);
    }
    /* a NaN with a valid checksum */
    m.params[m.n_params - 5] = f32_from_bits(0x7fc00000u);
    free(b.p); b.p = NULL; b.n = b.cap = 0;
    ckpt_serialize(&b, &m, "meta");
    CHECK(write_bytes(path, b.p, b.n) == 0, "write");
    CHECK(ckpt_load_stream(&l, path, dg) == -1, "a NaN parameter accepted by the streaming reader");
    CHECK(ckpt_load_stream(&l, tmpl, dg) == -1, "a directory accepted by the streaming reader");
    remove(path); rmdir(tmpl);
    free(x); free(b.p); free(meta);
    model_free(&m);
}

static void test_lr_schedule(void) {
    TrainConfig t = train_config_default();
    t.steps = 100; t.warmup = 10; t.lr = 1.0f; t.lr_min = 0.1f;
    CHECK(lr_at(&t, 0) == 0.1f, "warm-up starts at lr/warmup: %g", (double)lr_at(&t, 0));
    CHECK(lr_at(&t, 9) == 1.0f, "warm-up ends at lr: %g", (double)lr_at(&t, 9));
    CHECK(fabs(lr_at(&t, 55) - 0.55) < 1e-6, "cosine midpoint: %g", (double)lr_at(&t, 55));
    CHECK(fabs(lr_at(&t, 100) - 0.1) < 1e-6, "floor: %g", (double)lr_at(&t, 100));
    t.linear = 1;
    CHECK(fabs(lr_at(&t, 32) - (0.1 + 0.9 * (1.0 - 22.0 / 90.0))) < 1e-6, "linear: %g", (double)lr_at(&t, 32));
}

int main(void) {
    RUN(test_gradients_mha_untied);
    RUN(test_gradients_gqa_untied);
    RUN(test_gradients_mha_tied);
    RUN(test_gradients_gqa_tied);
    RUN(test_gradients_with_dropout);
    RUN(test_memorisation);
    RUN(test_kv_cache_matches_forward);
    RUN(test_greedy_equals_argmax);
    RUN(test_sampling_seeds);
    RUN(test_shared_prefill_equals_separate);
    RUN(test_lm_rows_only_same_bits);
    RUN(test_shared_opening_equals_alone);
    RUN(test_top_p_support);
    RUN(test_top_p_prefix_equals_sort);
    RUN(test_training_deterministic);
    RUN(test_checkpoint_refusals);
    RUN(test_checkpoint_stream_load);
    RUN(test_micro_batches);
    RUN(test_keep_equals_recompute);
    RUN(test_lr_schedule);
    return check_summary();
}
