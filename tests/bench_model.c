/* bench_model.c - training and decoding speed of the reference config
 * (dim 128, 4 layers, 4 heads, ffn 352, vocab 512, context 256, tied; 0.87M
 * parameters): training tokens/s at batch 16 x 128 (forward, backward,
 * AdamW), also with the loss on the last third of each row only (an SFT judge
 * example is two thirds prompt), and decode tokens/s for one sequence, for 32
 * at once, and judge-shaped: 64 sequences, 3 per prompt, 160-token prompts
 * that share a 100-token opening. Random weights sample near-uniformly, so
 * top-p keeps many tokens here; a trained model keeps few. */
#define SRLM_NO_MAIN
#include "../srlm.c"

static int bench_next(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    Rng r;
    int i;
    (void)self;
    rng_init(&r, (uint64_t)step, RNG_STREAM_DATA);
    for (i = 0; i < B * T; i++) { inputs[i] = (int)rng_below(&r, 512); targets[i] = (int)rng_below(&r, 512); }
    return T;
}

/* the same rows with no target in the first two thirds, as in an SFT prompt */
static int bench_next_sft(Batcher *self, int step, int *inputs, int *targets, int B, int T) {
    int i;
    bench_next(self, step, inputs, targets, B, T);
    for (i = 0; i < B * T; i++) if (i % T < 2 * T / 3) targets[i] = -1;
    return T;
}

int main(void) {
    Model m;
    TrainConfig t = train_config_default();
    Batcher bt;
    Decoder d;
    GenConfig g;
    double t0, el;
    int i, prompt[8] = {256, 1, 2, 3, 4, 5, 6, 7}, *pp[32], plen[32], *out[32], olen[32];
    uint64_t seeds[32];
    memset(&m, 0, sizeof m);
    m.cfg.dim = 128; m.cfg.n_layers = 4; m.cfg.n_heads = 4; m.cfg.n_kv_heads = 4; m.cfg.hidden_dim = 352;
    m.cfg.vocab_size = 512; m.cfg.max_seq_len = 256; m.cfg.tied = 1; m.cfg.rope_theta = 10000.0f; m.cfg.norm_eps = 1e-5f;
    model_init_buffers(&m);
    model_init_random(&m, 1);
    printf("model: dim 128, 4 layers, 4 heads, ffn 352, vocab 512, context 256, tied: %lu parameters\n", (unsigned long)m.n_params);
    bt.next = bench_next; bt.ctx = NULL;
    t.steps = 1; t.batch = 16; t.seq = 128; t.log_every = 0;
    train_model(&m, &t, &bt, "warmup");
    t.steps = 10;
    t0 = now_seconds();
    train_model(&m, &t, &bt, "bench");
    el = now_seconds() - t0;
    printf("train: %.0f tokens/s (batch 16 x 128, %d steps in %.2f s)\n", 10.0 * 16 * 128 / el, t.steps, el);
    t.dropout = 0.1f;
    t0 = now_seconds();
    train_model(&m, &t, &bt, "bench");
    el = now_seconds() - t0;
    printf("train with dropout 0.1: %.0f tokens/s\n", 10.0 * 16 * 128 / el);
    bt.next = bench_next_sft;
    t0 = now_seconds();
    train_model(&m, &t, &bt, "bench");
    el = now_seconds() - t0;
    printf("train with dropout 0.1, loss on the last third of each row: %.0f tokens/s\n", 10.0 * 16 * 128 / el);
    g.max_new = 200; g.temperature = 0.0f; g.top_p = 1.0f; g.stops = NULL; g.n_stops = 0;
    for (i = 0; i < 32; i++) { pp[i] = prompt; plen[i] = 8; seeds[i] = (uint64_t)i; }
    decoder_init(&d, &m.cfg, 32, 1024);
    t0 = now_seconds();
    generate(&m, &d, 1, pp, plen, seeds, &g, out, olen);
    el = now_seconds() - t0;
    printf("decode, 1 sequence: %.0f tokens/s\n", olen[0] / el);
    free(out[0]);
    t0 = now_seconds();
    generate(&m, &d, 32, pp, plen, seeds, &g, out, olen);
    el = now_seconds() - t0;
    {
        long tot = 0;
        for (i = 0; i < 32; i++) { tot += olen[i]; free(out[i]); }
        printf("decode, 32 sequences at once: %.0f tokens/s\n", tot / el);
    }
    g.temperature = 0.7f; g.top_p = 0.9f;
    t0 = now_seconds();
    generate(&m, &d, 32, pp, plen, seeds, &g, out, olen);
    el = now_seconds() - t0;
    {
        long tot = 0;
        for (i = 0; i < 32; i++) { tot += olen[i]; free(out[i]); }
        printf("decode, 32 sequences, T=0.7 top-p 0.9: %.0f tokens/s\n", tot / el);
    }
    decoder_free(&d);
    {   /* judge-shaped: 21 prompts x 3 samples (+1), 100-token shared opening, 60 own tokens */
        static int jp[22][160];
        int *jpp[64], jlen[64], *jout[64], jol[64], k;
        long tot = 0;
        Rng r;
        rng_init(&r, 5, RNG_STREAM_DATA);
        for (k = 0; k < 22; k++)
            for (i = 0; i < 160; i++) jp[k][i] = k > 0 && i < 100 ? jp[0][i] : (int)rng_below(&r, 512);
        for (i = 0; i < 64; i++) { jpp[i] = jp[i / 3]; jlen[i] = 160; }
        decoder_init(&d, &m.cfg, 64, 1024);
        g.max_new = 100;
        {
            uint64_t jseeds[64];
            for (i = 0; i < 64; i++) jseeds[i] = (uint64_t)i;
            t0 = now_seconds();
            generate(&m, &d, 64, jpp, jlen, jseeds, &g, jout, jol);
            el = now_seconds() - t0;
        }
        for (i = 0; i < 64; i++) { tot += jol[i]; free(jout[i]); }
        printf("judge-shaped, 64 sequences (3 per prompt, shared opening), T=0.7 top-p 0.9: %.0f tokens/s, %.2f s\n",
               tot / el, el);
        decoder_free(&d);
    }
    model_free(&m);
    return 0;
}
