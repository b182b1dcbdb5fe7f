/* bench_model.c - training and decoding speed of the reference config
 * (dim 128, 4 layers, 4 heads, ffn 352, vocab 512, context 256, tied; 0.87M
 * parameters): training tokens/s at batch 16 x 128 (forward, backward,
 * AdamW), and decode tokens/s for one sequence and for 32 at once. */
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
    model_free(&m);
    return 0;
}
