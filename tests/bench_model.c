/* bench_model.c - `make bench`: one table of srlm's workloads beside the
 * core's measured peak (a benchmark, not a test: figures, never pass/fail).
 *
 * Every figure is the best of several repeats in CPU time (clock()), so a
 * shared machine inflates it less. Weights are random: speed does not depend
 * on their values (no stop tokens; greedy or fixed-seed sampling).
 *
 * GFLOP/s counts 2 flops per multiply-add of the matmuls and attention
 * products (causal: only s <= t), forward; training is 3x forward (backward
 * is two products per forward product). The peak is a kernel of 8
 * independent multiply-then-add accumulator vectors (what the matmul tiles
 * do, without FMA: -ffp-contract=off) on the widest vectors the build
 * targets, so "% peak" is the fraction of this core's limit for that form.
 * `make bench-detail` has the per-op figures (tests/bench_ops.c).
 */
#define SRLM_NO_MAIN
#include "../srlm.c"

static double cpu_now(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* ---- the peak kernel ---- */
#if defined(__AVX__) && !defined(__AVX512F__)
#include <immintrin.h>
/* 8 accumulators x 8 lanes, each step a multiply then an add (two vector ops per 8 lanes) */
static double peak_kernel(long n, float *sink) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m256 x0 = _mm256_set1_ps(1e-7f), x1 = _mm256_set1_ps(2e-7f), x2 = _mm256_set1_ps(3e-7f), x3 = _mm256_set1_ps(4e-7f);
    __m256 b0 = _mm256_set1_ps(0.5f), b1 = _mm256_set1_ps(0.25f);
    volatile float keep;
    long i;
    for (i = 0; i < n; i++) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(x0, b0)); a1 = _mm256_add_ps(a1, _mm256_mul_ps(x0, b1));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(x1, b0)); a3 = _mm256_add_ps(a3, _mm256_mul_ps(x1, b1));
        a4 = _mm256_add_ps(a4, _mm256_mul_ps(x2, b0)); a5 = _mm256_add_ps(a5, _mm256_mul_ps(x2, b1));
        a6 = _mm256_add_ps(a6, _mm256_mul_ps(x3, b0)); a7 = _mm256_add_ps(a7, _mm256_mul_ps(x3, b1));
        __asm__ volatile("" : "+x"(b0), "+x"(b1)); /* b "may change": no product is hoisted out of the loop */
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    keep = _mm256_cvtss_f32(a0);
    *sink = keep;
    return 8.0 * 8 * 2 * (double)n;
}
#define PEAK_FORM "AVX, 8 x 8-float mul+add"
#else
/* plain C: 8 accumulator arrays of 16 floats (one AVX-512 vector, two AVX, four SSE/NEON) */
static double peak_kernel(long n, float *sink) {
    float a0[16], a1[16], a2[16], a3[16], a4[16], a5[16], a6[16], a7[16], b[16];
    long i;
    int j;
    for (j = 0; j < 16; j++) { a0[j] = a1[j] = a2[j] = a3[j] = a4[j] = a5[j] = a6[j] = a7[j] = 0.0f; b[j] = 0.5f + j * 1e-3f; }
    for (i = 0; i < n; i++) {
        float x = (float)(i & 7) * 1e-7f;
        for (j = 0; j < 16; j++) {
            a0[j] += x * b[j]; a1[j] += (x + 1e-7f) * b[j]; a2[j] += (x + 2e-7f) * b[j]; a3[j] += (x + 3e-7f) * b[j];
            a4[j] += (x + 4e-7f) * b[j]; a5[j] += (x + 5e-7f) * b[j]; a6[j] += (x + 6e-7f) * b[j]; a7[j] += (x + 7e-7f) * b[j];
        }
    }
    *sink = a0[3] + a1[5] + a2[7] + a3[9] + a4[11] + a5[13] + a6[15] + a7[0];
    return 8.0 * 16 * 2 * (double)n;
}
#define PEAK_FORM "plain C, 8 x 16-float mul+add"
#endif

static double measure_peak(void) {
    double best = 1e30, fl = 0.0;
    float sink = 0.0f;
    int r;
    for (r = 0; r < 5; r++) {
        double t0 = cpu_now(), dt;
        fl = peak_kernel(20000000L, &sink);
        dt = cpu_now() - t0;
        if (dt < best) best = dt;
    }
    if (sink == 12345.0f) printf(" ");
    return fl / best * 1e-9;
}

/* ---- models ---- */
static void model_make(Model *m, int dim, int layers, int heads, int hidden, int vocab, int ctx) {
    memset(m, 0, sizeof *m);
    m->cfg.dim = dim; m->cfg.n_layers = layers; m->cfg.n_heads = heads; m->cfg.n_kv_heads = heads;
    m->cfg.hidden_dim = hidden; m->cfg.vocab_size = vocab; m->cfg.max_seq_len = ctx; m->cfg.tied = 1;
    m->cfg.rope_theta = 10000.0f; m->cfg.norm_eps = 1e-5f;
    model_init_buffers(m);
    model_init_random(m, 1);
}

/* forward flops of one token at position pos (0-based): matmuls + causal attention */
static double flops_token(const Config *c, double pos) {
    double C = c->dim, F = c->hidden_dim, KVC = cfg_kv_dim(c), V = c->vocab_size, L = c->n_layers;
    return 2.0 * (L * (2 * C * C + 2 * C * KVC + 3 * C * F) + C * V) + L * 4.0 * (pos + 1) * C;
}

static int bench_vocab = 768;
static int bench_next(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    Rng r;
    int i;
    (void)self;
    rng_init(&r, (uint64_t)step, RNG_STREAM_DATA);
    for (i = 0; i < B * T; i++) {
        inputs[i] = (int)rng_below(&r, (uint32_t)bench_vocab);
        targets[i] = (int)rng_below(&r, (uint32_t)bench_vocab);
    }
    return T;
}

static double peak_gflops;
static void row(const char *what, const char *shape, double toks, double gflops, const char *note) {
    char t[32] = "", g[32] = "", p[32] = "";
    if (toks > 0) snprintf(t, sizeof t, "%.0f", toks);
    if (gflops > 0) snprintf(g, sizeof g, "%.1f", gflops);
    if (gflops > 0 && peak_gflops > 0) snprintf(p, sizeof p, "%.0f%%", 100.0 * gflops / peak_gflops);
    printf("| %-28s | %-30s | %9s | %7s | %6s | %s\n", what, shape, t, g, p, note);
    fflush(stdout);
}

/* best seconds of one optimizer step (B x T), after a warm-up step */
static double bench_train(Model *m, int B, int T, int reps) {
    TrainConfig t = train_config_default();
    Batcher bt;
    double best = 1e30;
    int r;
    bt.next = bench_next; bt.ctx = NULL;
    t.steps = 1; t.batch = B; t.seq = T; t.log_every = 0; t.warmup = 0;
    train_model(m, &t, &bt, "bench");
    for (r = 0; r < reps; r++) {
        double t0 = cpu_now(), dt;
        train_model(m, &t, &bt, "bench");
        dt = cpu_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

static void train_row(const char *what, int dim, int layers, int heads, int hidden, int B, int T, int reps) {
    Model m;
    char shape[64];
    double s, fl = 0.0;
    int p;
    model_make(&m, dim, layers, heads, hidden, bench_vocab, T);
    s = bench_train(&m, B, T, reps);
    for (p = 0; p < T; p++) fl += flops_token(&m.cfg, p);
    fl *= 3.0 * B;
    snprintf(shape, sizeof shape, "d%d L%d H%d F%d V%d, %dx%d", dim, layers, heads, hidden, bench_vocab, B, T);
    row(what, shape, B * T / s, fl / s * 1e-9, "");
    model_free(&m);
}

/* best seconds of generate(); tokens generated in *ntok, flops in *fl */
static double bench_generate(const Model *m, Decoder *d, int n, int *const *prompts, const int *plen, GenConfig *g,
                             int reps, long *ntok, double *fl) {
    int *out[64], olen[64], i, r, p;
    uint64_t seeds[64];
    double best = 1e30;
    for (i = 0; i < n; i++) seeds[i] = (uint64_t)i + 1;
    for (r = 0; r < reps; r++) {
        double t0 = cpu_now(), dt;
        generate(m, d, n, prompts, plen, seeds, g, out, olen);
        dt = cpu_now() - t0;
        if (dt < best) best = dt;
        *ntok = 0; *fl = 0.0;
        for (i = 0; i < n; i++) {
            *ntok += olen[i];
            for (p = 0; p < olen[i]; p++) *fl += flops_token(&m->cfg, plen[i] + p);
            free(out[i]);
        }
    }
    return best;
}

static void decode_one_row(const char *what, Model *m, const char *shape, int max_new) {
    Decoder d;
    GenConfig g;
    int prompt[8] = {1, 2, 3, 4, 5, 6, 7, 8}, *pp[1], plen[1] = {8};
    long nt;
    double fl, s;
    pp[0] = prompt;
    g.max_new = max_new; g.temperature = 0.0f; g.top_p = 1.0f; g.stops = NULL; g.n_stops = 0;
    decoder_init(&d, &m->cfg, 1, 512);
    s = bench_generate(m, &d, 1, pp, plen, &g, 3, &nt, &fl);
    row(what, shape, nt / s, fl / s * 1e-9, "greedy, 8-token prompt");
    decoder_free(&d);
}

/* bench_model --decode DIR: only the two one-sequence decode rows, after
 * saving their random models to DIR/d128.ckpt and DIR/d288.ckpt, for
 * tests/bench_llama2c.sh to run llama2.c's run.c on the same weights. */
static int decode_only(const char *dir) {
    Model m;
    char path[512];
    printf("| %-28s | %-30s | %9s | %7s | %6s | %s\n", "workload", "shape", "tok/s", "GFLOP/s", "% peak", "");
    peak_gflops = 0.0;  /* not measured here: the % column stays empty */
    model_make(&m, 128, 4, 4, 352, 768, 320);
    snprintf(path, sizeof path, "%s/d128.ckpt", dir);
    if (ckpt_save(path, &m, "bench", NULL) != 0) return 1;
    decode_one_row("decode, 1 sequence (m0)", &m, "d128 L4 H4 F352 V768", 300);
    model_free(&m);
    model_make(&m, 288, 6, 6, 768, 768, 320);
    snprintf(path, sizeof path, "%s/d288.ckpt", dir);
    if (ckpt_save(path, &m, "bench", NULL) != 0) return 1;
    decode_one_row("decode, 1 sequence (dim 288)", &m, "d288 L6 H6 F768 V768", 300);
    model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    Model m;
    Decoder d;
    GenConfig g;
    char note[96];
    int i;
    if (argc == 3 && strcmp(argv[1], "--decode") == 0) return decode_only(argv[2]);
    printf("srlm bench: one thread, CPU time, best of repeats (%s)\n", "tests/bench_model.c");
    peak_gflops = measure_peak();
    printf("| %-28s | %-30s | %9s | %7s | %6s | %s\n", "workload", "shape", "tok/s", "GFLOP/s", "% peak", "");
    printf("|------------------------------|--------------------------------|-----------|---------|--------|\n");
    row("core peak (measured)", PEAK_FORM, 0, peak_gflops, "");

    train_row("training dim 128", 128, 4, 4, 352, 16, 256, 3);
    {
        double rss = platform_peak_rss_mb();
        snprintf(note, sizeof note, "peak RSS of this process after dim-128 training: %.0f MB", rss);
        printf("| %-28s | %-30s | %9s | %7s | %6s | %s\n", "  memory", "", "", "", "", note);
    }
    train_row("training dim 256", 256, 4, 4, 704, 16, 256, 2);

    /* decoding at m0's shape (dim 128, L4, H4, F352, V768, context 320) and dim 288 L6 H6 */
    model_make(&m, 128, 4, 4, 352, 768, 320);
    decode_one_row("decode, 1 sequence (m0)", &m, "d128 L4 H4 F352 V768", 300);
    g.max_new = 100; g.temperature = 0.7f; g.top_p = 0.9f; g.stops = NULL; g.n_stops = 0;
    {
        int prompt[8] = {1, 2, 3, 4, 5, 6, 7, 8}, *pp[32], plen[32];
        long nt;
        double fl, s;
        for (i = 0; i < 32; i++) { pp[i] = prompt; plen[i] = 8; }
        decoder_init(&d, &m.cfg, 32, 1024);
        s = bench_generate(&m, &d, 32, pp, plen, &g, 3, &nt, &fl);
        row("decode, 32 sequences (m0)", "d128 L4 H4 F352 V768", nt / s, fl / s * 1e-9, "T=0.7 top-p 0.9, 100 new");
        decoder_free(&d);
    }
    {   /* judge-shaped: 21 prompts x 3 samples (+1), 160-token prompts sharing a 100-token opening */
        static int jp[22][160];
        int *jpp[64], jlen[64], k;
        long nt;
        double fl, s;
        Rng r;
        rng_init(&r, 5, RNG_STREAM_DATA);
        for (k = 0; k < 22; k++)
            for (i = 0; i < 160; i++) jp[k][i] = k > 0 && i < 100 ? jp[0][i] : (int)rng_below(&r, 768);
        for (i = 0; i < 64; i++) { jpp[i] = jp[i / 3]; jlen[i] = 160; }
        decoder_init(&d, &m.cfg, 64, 2048);
        s = bench_generate(&m, &d, 64, jpp, jlen, &g, 3, &nt, &fl);
        row("judging, 64 sequences (m0)", "d128 L4 H4 F352 V768", nt / s, fl / s * 1e-9, "3 per prompt, 160-token prompts");
        decoder_free(&d);
    }
    {   /* prefill: one 255-token prompt, one new token */
        static int pr[255];
        int *pp[1], plen[1] = {255}, *out[1], olen[1];
        uint64_t seed = 1;
        double best = 1e30, fl = 0.0;
        int r;
        for (i = 0; i < 255; i++) pr[i] = (i * 37) % 768;
        pp[0] = pr;
        g.max_new = 1; g.temperature = 0.0f;
        decoder_init(&d, &m.cfg, 1, 512);
        for (r = 0; r < 5; r++) {
            double t0 = cpu_now(), dt;
            generate(&m, &d, 1, pp, plen, &seed, &g, out, olen);
            dt = cpu_now() - t0;
            if (dt < best) best = dt;
            free(out[0]);
        }
        for (i = 0; i < 255; i++) fl += flops_token(&m.cfg, i);
        row("prefill, 255 tokens (m0)", "d128 L4 H4 F352 V768", 255 / best, fl / best * 1e-9, "");
        decoder_free(&d);
    }
    model_free(&m);

    model_make(&m, 288, 6, 6, 768, 768, 320);
    {   /* the read bandwidth over a buffer the size of these weights: one-sequence decoding
         * reads every weight once per token, so passes/s is about its tokens/s limit (a
         * little more where the last-level cache holds part of the weights) */
        size_t n = m.n_params, k;
        float *buf = xmalloc(n * sizeof(float)), lane[16];
        double best = 1e30;
        int r, j;
        for (k = 0; k < n; k++) buf[k] = (float)(k & 1023);
        for (r = 0; r < 20; r++) {
            double t0 = cpu_now(), dt;
            for (j = 0; j < 16; j++) lane[j] = 0.0f;
            for (k = 0; k + 16 <= n; k += 16) for (j = 0; j < 16; j++) lane[j] += buf[k + j];
            dt = cpu_now() - t0;
            if (dt < best) best = dt;
            if (lane[3] == -1.0f) printf(" ");
        }
        snprintf(note, sizeof note, "%.1f GB/s read: %.0f passes/s over %.1f MB (L3 holds part)", n * 4.0 / best * 1e-9,
                 1.0 / best, n * 4.0 * 1e-6);
        row("memory read bandwidth", "6.2M floats, as dim 288", 0, 0, note);
        free(buf);
    }
    decode_one_row("decode, 1 sequence (dim 288)", &m, "d288 L6 H6 F768 V768", 300);
    {   /* checkpoint load: SHA-256 and finite check of a 25 MB file (one pass: ckpt_load_stream) */
        const char *path = "build/bench_load.ckpt";
        Model l;
        double best = 1e30;
        struct stat st;
        int r;
        if (ckpt_save(path, &m, "bench", NULL) != 0) return 1;
        stat(path, &st);
        for (r = 0; r < 5; r++) {
            double t0 = cpu_now(), dt;
            ckpt_load(&l, path, NULL);
            dt = cpu_now() - t0;
            if (dt < best) best = dt;
            model_free(&l);
        }
        snprintf(note, sizeof note, "%.1f MB checked in %.1f ms: %.0f MB/s (SHA-256 %s)", st.st_size / 1e6, best * 1e3,
                 st.st_size / best / 1e6, sha256_hardware(-1) ? "SHA-NI" : "portable");
        row("checkpoint load (dim 288)", "6.2M params", 0, 0, note);
        remove(path);
    }
    model_free(&m);
    return 0;
}
