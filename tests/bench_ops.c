/* bench_ops.c - speed of the ops at the reference model's shapes (batch 16 x 128
 * tokens, dim 128, 4 heads, ffn 352, vocab 512). Figures, not pass/fail.
 *
 * Each figure is the fastest of several timed calls (CPU time via clock()),
 * so other load on the machine inflates it less. GFLOP/s counts 2 flops per
 * multiply-add: matmul forward 2*N*C*OC, backward twice that.
 * Build: cc -std=c99 -O2 -ffp-contract=off tests/bench_ops.c tensor.c -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../tensor.h"

static uint64_t bench_rng = 88172645463325252ull;

static float *rand_buf(size_t n) { /* uniform in [-1, 1), xorshift64*: no particular stream needed */
    float *p = malloc(n * sizeof(float));
    size_t i;
    if (!p) { fprintf(stderr, "bench_ops: out of memory\n"); exit(1); }
    for (i = 0; i < n; i++) {
        bench_rng ^= bench_rng >> 12; bench_rng ^= bench_rng << 25; bench_rng ^= bench_rng >> 27;
        p[i] = (float)((int32_t)((bench_rng * 0x2545f4914f6cdd1dull) >> 40) - (1 << 23)) * 0x1p-23f;
    }
    return p;
}

static double now(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* the shape under test, so one timing loop serves every op */
static struct { int N, C, OC, B, T, H, KVH, hd, V; float *x[12]; int *tok; } S;

typedef void (*op_fn)(void);

/* fastest of at least 5 calls and at least 0.3 s of calls */
static double best_time(op_fn f) {
    double best = 1e30, start = now();
    int reps = 0;
    f(); /* warm up: page faults, caches */
    while (reps < 5 || now() - start < 0.3) {
        double t0 = now(), dt;
        f();
        dt = now() - t0;
        if (dt < best) best = dt;
        reps++;
    }
    return best;
}

static void mm_fwd(void) { matmul_forward(S.x[2], S.x[0], S.x[1], S.N, S.C, S.OC); }
static void mm_bwd(void) { matmul_backward(S.x[4], S.x[5], S.x[3], S.x[0], S.x[1], S.N, S.C, S.OC); }
static void att_fwd(void) { attention_forward(S.x[3], S.x[4], S.x[0], S.x[1], S.x[2], S.B, S.T, S.H, S.KVH, S.hd); }
static void att_bwd(void) {
    attention_backward(S.x[5], S.x[6], S.x[7], S.x[9], S.x[8], S.x[4], S.x[0], S.x[1], S.x[2], S.B, S.T, S.H, S.KVH, S.hd);
}
static void ce_fwd(void) { softmax_crossentropy_forward(S.x[2], S.x[1], S.x[0], S.tok, S.N, S.V); }
static void ce_bwd(void) { softmax_crossentropy_backward(S.x[3], S.x[4], S.x[1], S.tok, S.N, S.V); }
static void rms_fwd(void) { rmsnorm_forward(S.x[2], S.x[3], S.x[0], S.x[1], S.N, S.C, 1e-5f); }
static void rms_bwd(void) { rmsnorm_backward(S.x[4], S.x[5], S.x[6], S.x[0], S.x[1], S.x[3], S.N, S.C); }
static void glu_fwd(void) { swiglu_forward(S.x[2], S.x[0], S.x[1], (size_t)S.N * S.OC); }
static void glu_bwd(void) { swiglu_backward(S.x[3], S.x[4], S.x[5], S.x[0], S.x[1], (size_t)S.N * S.OC); }

static void bench_matmul(int N, int C, int OC, double *tot_flops, double *tot_time) {
    double fl = 2.0 * N * C * OC, tf, tb;
    S.N = N; S.C = C; S.OC = OC;
    S.x[0] = rand_buf((size_t)N * C); S.x[1] = rand_buf((size_t)OC * C); S.x[2] = rand_buf((size_t)N * OC);
    S.x[3] = rand_buf((size_t)N * OC); S.x[4] = rand_buf((size_t)N * C); S.x[5] = rand_buf((size_t)OC * C);
    tf = best_time(mm_fwd);
    tb = best_time(mm_bwd);
    printf("matmul N=%d C=%-3d OC=%-3d  fwd %6.2f  bwd %6.2f  fwd+bwd %6.2f GFLOP/s  (%.2f ms)\n", N, C, OC,
           fl / tf * 1e-9, 2 * fl / tb * 1e-9, 3 * fl / (tf + tb) * 1e-9, (tf + tb) * 1e3);
    *tot_flops += 3 * fl; *tot_time += tf + tb;
    free(S.x[0]); free(S.x[1]); free(S.x[2]); free(S.x[3]); free(S.x[4]); free(S.x[5]);
}

int main(void) {
    static const int shapes[][3] = { {2048, 128, 384}, {2048, 128, 352}, {2048, 352, 128}, {2048, 128, 512} };
    double flops = 0, secs = 0, tf, tb;
    int s, i;
    for (s = 0; s < 4; s++) bench_matmul(shapes[s][0], shapes[s][1], shapes[s][2], &flops, &secs);
    printf("matmul overall %.2f GFLOP/s\n", flops / secs * 1e-9);

    /* attention: B=16, T=128, H=4, hd=32; KVH = 4 (MHA) and 2 (GQA) */
    for (s = 0; s < 2; s++) {
        size_t nq, nk, na;
        S.B = 16; S.T = 128; S.H = 4; S.KVH = s ? 2 : 4; S.hd = 32;
        nq = (size_t)S.B * S.T * S.H * S.hd; nk = (size_t)S.B * S.T * S.KVH * S.hd; na = (size_t)S.B * S.H * S.T * S.T;
        S.x[0] = rand_buf(nq); S.x[1] = rand_buf(nk); S.x[2] = rand_buf(nk); S.x[3] = rand_buf(nq);
        S.x[4] = rand_buf(na); S.x[5] = rand_buf(nq); S.x[6] = rand_buf(nk); S.x[7] = rand_buf(nk);
        S.x[8] = rand_buf(nq); S.x[9] = rand_buf((size_t)S.T * S.T); /* datt_buf: T*T */
        tf = best_time(att_fwd);
        tb = best_time(att_bwd);
        printf("attention B=16 T=128 H=4 KVH=%d hd=32  fwd %.2f ms  bwd %.2f ms\n", S.KVH, tf * 1e3, tb * 1e3);
        for (i = 0; i < 10; i++) free(S.x[i]);
    }

    /* softmax cross-entropy: N=2048, V=512 */
    S.N = 2048; S.V = 512;
    S.tok = malloc((size_t)S.N * sizeof(int));
    for (i = 0; i < S.N; i++) S.tok[i] = (i * 37) % S.V;
    S.x[0] = rand_buf((size_t)S.N * S.V); S.x[1] = rand_buf((size_t)S.N * S.V); S.x[2] = rand_buf((size_t)S.N);
    S.x[3] = rand_buf((size_t)S.N * S.V); S.x[4] = rand_buf((size_t)S.N);
    tf = best_time(ce_fwd);
    tb = best_time(ce_bwd);
    printf("softmax_ce N=2048 V=512  fwd %.2f ms  bwd %.2f ms\n", tf * 1e3, tb * 1e3);
    for (i = 0; i < 5; i++) free(S.x[i]);
    free(S.tok);

    /* rmsnorm N=2048 C=128; swiglu on N x 352 */
    S.N = 2048; S.C = 128; S.OC = 352;
    for (i = 0; i < 7; i++) S.x[i] = rand_buf((size_t)S.N * S.OC);
    tf = best_time(rms_fwd);
    tb = best_time(rms_bwd);
    printf("rmsnorm N=2048 C=128  fwd %.3f ms  bwd %.3f ms\n", tf * 1e3, tb * 1e3);
    tf = best_time(glu_fwd);
    tb = best_time(glu_bwd);
    printf("swiglu n=2048*352  fwd %.3f ms  bwd %.3f ms\n", tf * 1e3, tb * 1e3);
    for (i = 0; i < 7; i++) free(S.x[i]);
    return 0;
}
