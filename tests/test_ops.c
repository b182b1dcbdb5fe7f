/* test_ops.c - the transformer ops: gradients, invariants, and bit-exact orders.
 *
 * Gradient checks. Every backward is compared with central differences of a
 * separate double-precision re-implementation of its forward, written here
 * straight from the formula (not from tensor.c's loops). The scalar we
 * differentiate is L = sum_i g[i] * out[i] for a random g, so the backward is
 * called with dout = g. Why double and not the float op: a float forward has
 * rounding noise ~1e-7 |L| per evaluation, which divided by a step of ~1e-3
 * leaves ~1e-4 relative error in the numeric gradient, close to the size of
 * the bugs we want to see. In double with h = 1e-5 the numeric gradient is
 * good to ~1e-9, so the only error left is the float backward's own rounding
 * (~1e-6), and a tolerance of 1e-4 of the largest gradient still flags a
 * wrong sign, a missing term or a transposed index (all O(1) relative).
 * Each analytic gradient buffer starts at 1.0f, not 0, and 1 is subtracted
 * before comparing: that also proves the backward adds instead of overwriting.
 *
 * Bit-exact checks. The fast matmul is compared with memcmp against scalar
 * loops written from tensor.h's stated order, on shapes that are not
 * multiples of the register tile and that span several k-chunks; attention
 * likewise against a scalar transcription of its documented order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../tensor.h"
#include "check.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t test_rng = 0x5eed1234abcdull;

static double urand(void) { /* [0,1), xorshift64*: tests need no particular stream */
    test_rng ^= test_rng >> 12; test_rng ^= test_rng << 25; test_rng ^= test_rng >> 27;
    return (double)((test_rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) { printf("out of memory\n"); exit(2); }
    return p;
}

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) { printf("out of memory\n"); exit(2); }
    return p;
}

static void fill(float *x, size_t n, float scale) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)((2.0 * urand() - 1.0) * scale);
}

static void fill_const(float *x, size_t n, float v) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = v;
}

/* Finite differences: an op's double forward maps params x (n values) to L. */
typedef double (*loss_fn)(const double *x, const void *ctx);

static void fd_grad(double *grad, const float *xf, size_t n, loss_fn f, const void *ctx) {
    const double h = 1e-5;
    double *x = dalloc(n);
    size_t i;
    for (i = 0; i < n; i++) x[i] = xf[i];
    for (i = 0; i < n; i++) {
        double keep = x[i], lp, lm;
        x[i] = keep + h; lp = f(x, ctx);
        x[i] = keep - h; lm = f(x, ctx);
        x[i] = keep;
        grad[i] = (lp - lm) / (2 * h);
    }
    free(x);
}

/* analytic (started from 1.0f) vs numeric; error relative to the largest numeric value */
static void check_grad(const char *what, const float *analytic, const double *numeric, size_t n) {
    double maxn = 0, maxerr = 0;
    size_t i, worst = 0;
    for (i = 0; i < n; i++) if (fabs(numeric[i]) > maxn) maxn = fabs(numeric[i]);
    for (i = 0; i < n; i++) {
        double e = fabs(((double)analytic[i] - 1.0) - numeric[i]);
        if (e > maxerr) { maxerr = e; worst = i; }
    }
    CHECK(maxn > 1e-3, "%s: numeric gradient is ~0 (max %g): test has no power", what, maxn);
    CHECK(maxerr <= 1e-4 * maxn, "%s: max error %g at [%zu] (analytic %g, numeric %g, scale %g)", what, maxerr,
          worst, (double)analytic[worst] - 1.0, numeric[worst], maxn);
}

static double dot_d(const double *g, const double *out, size_t n) {
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) s += g[i] * out[i];
    return s;
}

/* ------------------------------------------------------------ matmul */

static void ref_matmul_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    int n, o, c;
    for (n = 0; n < N; n++)
        for (o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (c = 0; c < C; c++) acc += inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = acc;
        }
}

static void ref_matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                int N, int C, int OC) {
    int n, o, c;
    for (n = 0; n < N; n++)
        for (c = 0; c < C; c++) {
            float acc = dinp[(size_t)n * C + c];
            for (o = 0; o < OC; o++) acc += dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
            dinp[(size_t)n * C + c] = acc;
        }
    for (o = 0; o < OC; o++)
        for (c = 0; c < C; c++) {
            float acc = dw[(size_t)o * C + c];
            for (n = 0; n < N; n++) acc += dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
            dw[(size_t)o * C + c] = acc;
        }
}

static void test_matmul_bitexact(void) {
    /* odd sizes, sizes below/above one tile, and contraction lengths > 256 (several k-chunks)
     * for each of the three products: forward (k = C), dinp (k = OC), dweight (k = N); on AVX
     * panels of 48, 32 and 16 columns (tiles of 2, 3 and 5 rows, k-chunks of 128, 192, 384),
     * odd row counts and a partial last panel */
    static const int shapes[][3] = { {1, 1, 1}, {3, 5, 7}, {4, 16, 16}, {5, 17, 33}, {8, 32, 48}, {13, 37, 50},
                                     {7, 300, 9}, {301, 3, 21}, {6, 40, 270}, {64, 64, 64}, {9, 513, 17},
                                     {23, 300, 40}, {40, 33, 48}, {258, 129, 35}, {3, 0, 4}, {0, 5, 6},
                                     {131, 200, 96}, {5, 160, 352}, {33, 257, 80}, {130, 47, 129} };
    int s;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
        float *inp = falloc(ni), *w = falloc(nw), *dout = falloc(no);
        float *out = falloc(no), *out_ref = falloc(no);
        float *dinp = falloc(ni), *dinp_ref = falloc(ni), *dw = falloc(nw), *dw_ref = falloc(nw);
        fill(inp, ni, 1.0f); fill(w, nw, 0.5f); fill(dout, no, 1.0f);
        if (ni > 2) { inp[0] = 0.0f; inp[1] = -0.0f; } /* signed zeros take the same path too */
        fill_const(out, no, 123.0f);                   /* forward must overwrite, not add */
        fill(dinp, ni, 1.0f); memcpy(dinp_ref, dinp, ni * sizeof(float));
        fill(dw, nw, 1.0f); memcpy(dw_ref, dw, nw * sizeof(float));
        matmul_forward(out, inp, w, N, C, OC);
        ref_matmul_forward(out_ref, inp, w, N, C, OC);
        matmul_backward(dinp, dw, dout, inp, w, N, C, OC);
        ref_matmul_backward(dinp_ref, dw_ref, dout, inp, w, N, C, OC);
        CHECK(memcmp(out, out_ref, no * sizeof(float)) == 0, "forward differs from reference order, shape %d,%d,%d", N, C, OC);
        CHECK(memcmp(dinp, dinp_ref, ni * sizeof(float)) == 0, "dinp differs from reference order, shape %d,%d,%d", N, C, OC);
        CHECK(memcmp(dw, dw_ref, nw * sizeof(float)) == 0, "dweight differs from reference order, shape %d,%d,%d", N, C, OC);
        /* NULL gradients: the other one is still computed, identically */
        fill(dinp, ni, 1.0f); memcpy(dinp_ref, dinp, ni * sizeof(float));
        matmul_backward(dinp, NULL, dout, inp, w, N, C, OC);
        fill_const(dw_ref, nw, 0.0f);
        ref_matmul_backward(dinp_ref, dw_ref, dout, inp, w, N, C, OC);
        CHECK(memcmp(dinp, dinp_ref, ni * sizeof(float)) == 0, "dinp with dweight=NULL differs, shape %d,%d,%d", N, C, OC);
        /* matmul_backward_set: the bytes of a zeroed dinp then matmul_backward, whatever dinp held */
        fill_const(dinp, ni, 99.0f); fill_const(dinp_ref, ni, 0.0f);
        fill(dw, nw, 1.0f); memcpy(dw_ref, dw, nw * sizeof(float));
        matmul_backward_set(dinp, dw, dout, inp, w, N, C, OC);
        ref_matmul_backward(dinp_ref, dw_ref, dout, inp, w, N, C, OC);
        CHECK(memcmp(dinp, dinp_ref, ni * sizeof(float)) == 0, "matmul_backward_set dinp differs, shape %d,%d,%d", N, C, OC);
        CHECK(memcmp(dw, dw_ref, nw * sizeof(float)) == 0, "matmul_backward_set dweight differs, shape %d,%d,%d", N, C, OC);
        free(inp); free(w); free(dout); free(out); free(out_ref);
        free(dinp); free(dinp_ref); free(dw); free(dw_ref);
    }
}

/* The decoder's product on a packed weight: byte-identical to the reference order for one row
 * (the 8-panel register kernel, a partial panel, 1..N panels) and for several rows (the engine). */
static void test_matmul_packed_bitexact(void) {
    static const int shapes[][3] = { {1, 1, 1}, {1, 5, 7}, {1, 16, 16}, {1, 128, 128}, {1, 128, 768}, {1, 37, 130},
                                     {1, 300, 272}, {1, 352, 128}, {1, 513, 17}, {2, 40, 144}, {5, 17, 33},
                                     {64, 128, 352}, {9, 300, 129}, {1, 0, 4} };
    int s;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
        float *inp = falloc(ni), *w = falloc(nw), *out = falloc(no), *out_ref = falloc(no);
        float *packed = falloc(matmul_packed_size(C, OC));
        fill(inp, ni, 1.0f); fill(w, nw, 0.5f);
        if (ni > 2) { inp[0] = 0.0f; inp[1] = -0.0f; }
        fill_const(out, no, 123.0f);
        matmul_pack(packed, w, C, OC);
        matmul_forward_packed(out, inp, packed, N, C, OC);
        ref_matmul_forward(out_ref, inp, w, N, C, OC);
        CHECK(memcmp(out, out_ref, no * sizeof(float)) == 0, "packed forward differs from reference order, shape %d,%d,%d",
              N, C, OC);
        free(inp); free(w); free(out); free(out_ref); free(packed);
    }
}

typedef struct { int N, C, OC; const double *g; } MatmulCtx; /* x = [inp (N*C) | w (OC*C)] */

static double matmul_loss(const double *x, const void *vctx) {
    const MatmulCtx *c = vctx;
    const double *inp = x, *w = x + (size_t)c->N * c->C;
    double L = 0;
    int n, o, i;
    for (n = 0; n < c->N; n++)
        for (o = 0; o < c->OC; o++) {
            double s = 0;
            for (i = 0; i < c->C; i++) s += inp[n * c->C + i] * w[o * c->C + i];
            L += c->g[n * c->OC + o] * s;
        }
    return L;
}

static void test_matmul_grad(void) {
    enum { N = 3, C = 5, OC = 4 };
    float x[N * C + OC * C], g[N * OC], out[N * OC], d[N * C + OC * C];
    double gd[N * OC], num[N * C + OC * C];
    MatmulCtx ctx = { N, C, OC, gd };
    int i;
    fill(x, N * C + OC * C, 1.0f); fill(g, N * OC, 1.0f);
    for (i = 0; i < N * OC; i++) gd[i] = g[i];
    matmul_forward(out, x, x + N * C, N, C, OC);
    fill_const(d, N * C + OC * C, 1.0f);
    matmul_backward(d, d + N * C, g, x, x + N * C, N, C, OC);
    fd_grad(num, x, N * C + OC * C, matmul_loss, &ctx);
    check_grad("matmul dinp", d, num, N * C);
    check_grad("matmul dweight", d + N * C, num + N * C, OC * C);
}

/* ------------------------------------------------------------ embedding */

static void test_embedding(void) {
    enum { V = 6, C = 4, N = 5 };
    static const int tok[N] = { 2, 5, 2, 0, 2 };
    float wte[V * C], out[N * C], g[N * C], dwte[V * C];
    double num[V * C];
    int n, c, v;
    fill(wte, V * C, 1.0f); fill(g, N * C, 1.0f);
    embedding_forward(out, tok, wte, N, C);
    CHECK(memcmp(out + C, wte + 5 * C, C * sizeof(float)) == 0, "row 1 is not wte[5]");
    fill_const(dwte, V * C, 1.0f);
    embedding_backward(dwte, g, tok, N, C);
    /* L = sum g*wte[tok]: dL/dwte[v] = sum of g rows with token v (exact in double) */
    for (v = 0; v < V; v++)
        for (c = 0; c < C; c++) {
            double s = 0;
            for (n = 0; n < N; n++) if (tok[n] == v) s += g[n * C + c];
            num[v * C + c] = s;
        }
    check_grad("embedding dwte", dwte, num, V * C);
    /* order: token 2's three rows added in position order, one at a time */
    for (c = 0; c < C; c++) {
        float acc = 1.0f;
        acc += g[0 * C + c]; acc += g[2 * C + c]; acc += g[4 * C + c];
        CHECK(dwte[2 * C + c] == acc, "repeated token not accumulated in row order at c=%d", c);
    }
    CHECK(dwte[1 * C] == 1.0f && dwte[3 * C + 3] == 1.0f, "unused rows touched");
}

/* ------------------------------------------------------------ rmsnorm */

typedef struct { int N, C; double eps; const double *g; } RmsCtx; /* x = [inp (N*C) | w (C)] */

static double rmsnorm_loss(const double *x, const void *vctx) {
    const RmsCtx *c = vctx;
    const double *w = x + (size_t)c->N * c->C;
    double L = 0;
    int n, i;
    for (n = 0; n < c->N; n++) {
        const double *r = x + n * c->C;
        double ms = 0, rs;
        for (i = 0; i < c->C; i++) ms += r[i] * r[i];
        rs = 1.0 / sqrt(ms / c->C + c->eps);
        for (i = 0; i < c->C; i++) L += c->g[n * c->C + i] * r[i] * rs * w[i];
    }
    return L;
}

static void test_rmsnorm(void) {
    enum { N = 3, C = 7 };
    const float eps = 1e-5f;
    float x[N * C + C], g[N * C], out[N * C], rstd[N], d[N * C + C];
    double gd[N * C], num[N * C + C], ref;
    RmsCtx ctx;
    int i, n;
    fill(x, N * C + C, 1.5f); fill(g, N * C, 1.0f);
    for (i = 0; i < N * C; i++) gd[i] = g[i];
    ctx.N = N; ctx.C = C; ctx.eps = eps; ctx.g = gd;
    rmsnorm_forward(out, rstd, x, x + N * C, N, C, eps);
    for (n = 0; n < N; n++) {  /* forward value against the double formula */
        double ms = 0;
        for (i = 0; i < C; i++) ms += (double)x[n * C + i] * x[n * C + i];
        ref = 1.0 / sqrt(ms / C + eps);
        CHECK(fabs(rstd[n] - ref) <= 1e-6 * ref, "rstd[%d] %g vs %g", n, rstd[n], ref);
        for (i = 0; i < C; i++) {
            double o = x[n * C + i] * ref * x[N * C + i];
            CHECK(fabs(out[n * C + i] - o) <= 1e-5 * (1 + fabs(o)), "out[%d][%d] %g vs %g", n, i, out[n * C + i], o);
        }
    }
    fill_const(d, N * C + C, 1.0f);
    rmsnorm_backward(d, d + N * C, g, x, x + N * C, rstd, N, C);
    fd_grad(num, x, N * C + C, rmsnorm_loss, &ctx);
    check_grad("rmsnorm dinp", d, num, N * C);
    check_grad("rmsnorm dweight", d + N * C, num + N * C, C);
}

/* ------------------------------------------------------------ rope */

enum { RP_N = 3, RP_H = 2, RP_HD = 8, RP_MAXPOS = 64 };
static const int rope_pos[RP_N] = { 0, 5, 63 };

typedef struct { const float *cs, *sn; const double *g; } RopeCtx;

static double rope_loss(const double *x, const void *vctx) {
    const RopeCtx *c = vctx;
    double L = 0;
    int n, h, i, half = RP_HD / 2;
    for (n = 0; n < RP_N; n++)
        for (h = 0; h < RP_H; h++)
            for (i = 0; i < half; i++) {
                size_t b = ((size_t)n * RP_H + h) * RP_HD + 2 * i;
                double cs = c->cs[rope_pos[n] * half + i], sn = c->sn[rope_pos[n] * half + i];
                L += c->g[b] * (x[b] * cs - x[b + 1] * sn) + c->g[b + 1] * (x[b] * sn + x[b + 1] * cs);
            }
    return L;
}

/* the documented order, bit for bit: rows run four at a time with their sums side by side */
static void ref_rmsnorm(float *out, float *rstd, float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, int N, int C, float eps) {
    int n, c;
    for (n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float ss = 0.0f, r, dot = 0.0f, k;
        for (c = 0; c < C; c++) ss += x[c] * x[c];
        r = 1.0f / sqrtf(ss / (float)C + eps);
        for (c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] * r) * w[c];
        rstd[n] = r;
        for (c = 0; c < C; c++) dot += (g[c] * w[c]) * x[c];
        k = ((dot * r) * r) / (float)C;
        for (c = 0; c < C; c++) dinp[(size_t)n * C + c] += (g[c] * w[c] - x[c] * k) * r;
        for (c = 0; c < C; c++) dw[c] += g[c] * (x[c] * r);
    }
}

static void test_rmsnorm_bitexact(void) {
    static const int shapes[][2] = { {1, 1}, {3, 7}, {4, 16}, {5, 33}, {9, 128}, {13, 300} };
    int s;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t nc = (size_t)N * C;
        float *x = falloc(nc), *g = falloc(nc), *w = falloc((size_t)C), *o = falloc(nc), *o_r = falloc(nc);
        float *di = falloc(nc), *di_r = falloc(nc), *dw = falloc((size_t)C), *dw_r = falloc((size_t)C);
        float *rs = falloc((size_t)N), *rs_r = falloc((size_t)N);
        fill(x, nc, 3.0f); fill(g, nc, 1.0f); fill(w, (size_t)C, 1.0f);
        fill(di, nc, 0.5f); memcpy(di_r, di, nc * sizeof(float));
        fill(dw, (size_t)C, 0.5f); memcpy(dw_r, dw, (size_t)C * sizeof(float));
        rmsnorm_forward(o, rs, x, w, N, C, 1e-5f);
        rmsnorm_backward(di, dw, g, x, w, rs, N, C);
        ref_rmsnorm(o_r, rs_r, di_r, dw_r, g, x, w, N, C, 1e-5f);
        CHECK(memcmp(o, o_r, nc * sizeof(float)) == 0 && memcmp(rs, rs_r, (size_t)N * sizeof(float)) == 0,
              "rmsnorm forward differs from the documented order, N=%d C=%d", N, C);
        CHECK(memcmp(di, di_r, nc * sizeof(float)) == 0 && memcmp(dw, dw_r, (size_t)C * sizeof(float)) == 0,
              "rmsnorm backward differs from the documented order, N=%d C=%d", N, C);
        free(x); free(g); free(w); free(o); free(o_r); free(di); free(di_r); free(dw); free(dw_r); free(rs); free(rs_r);
    }
}

static void test_rope(void) {
    enum { NV = RP_N * RP_H * RP_HD, HALF = RP_HD / 2 };
    const float theta = 10000.0f;
    float cs[RP_MAXPOS * HALF], sn[RP_MAXPOS * HALF], x[NV], out[NV], inplace[NV], back[NV], g[NV], d[NV];
    double gd[NV], num[NV], maxerr = 0;
    RopeCtx ctx;
    int p, i;
    rope_tables(cs, sn, RP_MAXPOS, RP_HD, theta);
    for (p = 0; p < RP_MAXPOS; p++)  /* tables against the double formula */
        for (i = 0; i < HALF; i++) {
            double ang = p * pow(theta, -2.0 * i / RP_HD);
            double ec = fabs(cs[p * HALF + i] - cos(ang)), es = fabs(sn[p * HALF + i] - sin(ang));
            if (ec > maxerr) maxerr = ec;
            if (es > maxerr) maxerr = es;
        }
    CHECK(maxerr <= 1e-6, "rope table max error %g", maxerr);
    CHECK(cs[0] == 1.0f && sn[0] == 0.0f && cs[HALF - 1] == 1.0f, "position 0 is not the identity");
    fill(x, NV, 2.0f); fill(g, NV, 1.0f);
    rope_forward(out, x, rope_pos, cs, sn, RP_N, RP_H, RP_HD);
    memcpy(inplace, x, sizeof x);
    rope_forward(inplace, inplace, rope_pos, cs, sn, RP_N, RP_H, RP_HD);
    CHECK(memcmp(out, inplace, sizeof out) == 0, "in-place rope differs from out-of-place");
    CHECK(memcmp(out, x, RP_H * RP_HD * sizeof(float)) == 0, "row at position 0 changed");
    CHECK(memcmp(out + RP_H * RP_HD, x + RP_H * RP_HD, sizeof(float) * RP_H * RP_HD) != 0, "position 5 not rotated");
    for (i = 0; i < NV; i += 2) {  /* a rotation keeps each pair's length */
        double a = hypot(x[i], x[i + 1]), b = hypot(out[i], out[i + 1]);
        CHECK(fabs(a - b) <= 1e-6 * (1 + a), "pair %d norm %g -> %g", i / 2, a, b);
    }
    fill_const(back, NV, 0.0f);  /* backward is the inverse rotation: back(forward(x)) ~ x */
    rope_backward(back, out, rope_pos, cs, sn, RP_N, RP_H, RP_HD);
    for (i = 0; i < NV; i++) CHECK(fabs(back[i] - x[i]) <= 1e-5, "inverse at %d: %g vs %g", i, back[i], x[i]);
    for (i = 0; i < NV; i++) gd[i] = g[i];
    ctx.cs = cs; ctx.sn = sn; ctx.g = gd;
    fill_const(d, NV, 1.0f);
    rope_backward(d, g, rope_pos, cs, sn, RP_N, RP_H, RP_HD);
    fd_grad(num, x, NV, rope_loss, &ctx);
    check_grad("rope dinp", d, num, NV);
}

/* ------------------------------------------------------------ attention */

typedef struct { int B, T, H, KVH, hd; const double *g; } AttCtx; /* x = [q | k | v] */

static void att_double_forward(double *out, const double *q, const double *k, const double *v, const AttCtx *c) {
    int b, t, h, s, i, grp = c->H / c->KVH;
    double scale = 1.0 / sqrt((double)c->hd), sc[64];
    for (b = 0; b < c->B; b++)
        for (t = 0; t < c->T; t++)
            for (h = 0; h < c->H; h++) {
                const double *qv = q + (((size_t)b * c->T + t) * c->H + h) * c->hd;
                double *o = out + (((size_t)b * c->T + t) * c->H + h) * c->hd, m = -1e300, z = 0;
                for (s = 0; s <= t; s++) {
                    const double *kv = k + (((size_t)b * c->T + s) * c->KVH + h / grp) * c->hd;
                    double d = 0;
                    for (i = 0; i < c->hd; i++) d += qv[i] * kv[i];
                    sc[s] = d * scale;
                    if (sc[s] > m) m = sc[s];
                }
                for (s = 0; s <= t; s++) { sc[s] = exp(sc[s] - m); z += sc[s]; }
                for (i = 0; i < c->hd; i++) o[i] = 0;
                for (s = 0; s <= t; s++) {
                    const double *vv = v + (((size_t)b * c->T + s) * c->KVH + h / grp) * c->hd;
                    for (i = 0; i < c->hd; i++) o[i] += sc[s] / z * vv[i];
                }
            }
}

static double att_loss(const double *x, const void *vctx) {
    const AttCtx *c = vctx;
    size_t nq = (size_t)c->B * c->T * c->H * c->hd, nk = (size_t)c->B * c->T * c->KVH * c->hd;
    double *out = dalloc(nq), L;
    att_double_forward(out, x, x + nq, x + nq + nk, c);
    L = dot_d(c->g, out, nq);
    free(out);
    return L;
}

/* scalar transcription of the order documented in tensor.c, for bit-exact comparison */
static void ref_attention(float *out, float *att, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int hd) {
    int b, t, h, s, i, grp = H / KVH;
    float scale = 1.0f / sqrtf((float)hd), *datt = falloc((size_t)T);
    for (b = 0; b < B; b++) for (t = 0; t < T; t++) for (h = 0; h < H; h++) {
        const float *qv = q + (((size_t)b * T + t) * H + h) * hd;
        float *a = att + (((size_t)b * H + h) * T + t) * T, m, sum = 0.0f;
        for (s = 0; s < T; s++) a[s] = 0.0f;
        for (s = 0; s <= t; s++) {
            float d = 0.0f;
            for (i = 0; i < hd; i++) d += qv[i] * k[(((size_t)b * T + s) * KVH + h / grp) * hd + i];
            a[s] = d * scale;
        }
        m = a[0];
        for (s = 1; s <= t; s++) m = a[s] > m ? a[s] : m;
        for (s = 0; s <= t; s++) { a[s] = ts_expf(a[s] - m); sum += a[s]; }
        for (s = 0; s <= t; s++) a[s] = a[s] * (1.0f / sum);
        for (i = 0; i < hd; i++) {
            float o = 0.0f;
            for (s = 0; s <= t; s++) o += a[s] * v[(((size_t)b * T + s) * KVH + h / grp) * hd + i];
            out[(((size_t)b * T + t) * H + h) * hd + i] = o;
        }
    }
    for (b = 0; b < B; b++) for (h = 0; h < H; h++) for (t = 0; t < T; t++) {  /* GQA: dk, dv in (h, t) order */
        size_t qo = (((size_t)b * T + t) * H + h) * hd;
        const float *a = att + (((size_t)b * H + h) * T + t) * T;
        float dot = 0.0f;
        for (s = 0; s <= t; s++) {
            float d = 0.0f;
            for (i = 0; i < hd; i++) d += dout[qo + i] * v[(((size_t)b * T + s) * KVH + h / grp) * hd + i];
            datt[s] = d;
        }
        for (s = 0; s <= t; s++) dot += a[s] * datt[s];
        for (s = 0; s <= t; s++) {
            size_t ko = (((size_t)b * T + s) * KVH + h / grp) * hd;
            float ds = (a[s] * (datt[s] - dot)) * scale;
            for (i = 0; i < hd; i++) dq[qo + i] += ds * k[ko + i];
            for (i = 0; i < hd; i++) dk[ko + i] += ds * q[qo + i];
            for (i = 0; i < hd; i++) dv[ko + i] += a[s] * dout[qo + i];
        }
    }
    free(datt);
}

static void attention_case(int KVH) {
    enum { B = 2, T = 5, H = 4, HD = 6 };
    size_t nq = (size_t)B * T * H * HD, nk = (size_t)B * T * KVH * HD, natt = (size_t)B * H * T * T, n = nq + 2 * nk, i;
    float *x = falloc(n), *g = falloc(nq), *out = falloc(nq), *att = falloc(natt), *d = falloc(n);
    float *out_r = falloc(nq), *att_r = falloc(natt), *d_r = falloc(n), datt_buf[T * T];
    double *gd = dalloc(nq), *num = dalloc(n), *outd = dalloc(nq), *xd = dalloc(n), maxe = 0;
    AttCtx ctx;
    int b, h, t, s;
    char name[64];
    ctx.B = B; ctx.T = T; ctx.H = H; ctx.KVH = KVH; ctx.hd = HD; ctx.g = gd;
    fill(x, n, 1.5f); fill(g, nq, 1.0f);
    for (i = 0; i < nq; i++) gd[i] = g[i];
    fill_const(att, natt, 7.0f);
    attention_forward(out, att, x, x + nq, x + nq + nk, B, T, H, KVH, HD);
    for (i = 0; i < n; i++) xd[i] = x[i];
    att_double_forward(outd, xd, xd + nq, xd + nq + nk, &ctx);
    for (i = 0; i < nq; i++) if (fabs(out[i] - outd[i]) > maxe) maxe = fabs(out[i] - outd[i]);
    CHECK(maxe <= 1e-5, "KVH=%d forward max error %g vs double", KVH, maxe);
    for (b = 0; b < B; b++) for (h = 0; h < H; h++) for (t = 0; t < T; t++) {
        const float *a = att + (((size_t)b * H + h) * T + t) * T;
        double sum = 0;
        for (s = 0; s <= t; s++) sum += a[s];
        for (s = t + 1; s < T; s++) CHECK(a[s] == 0.0f, "att above the diagonal not zero at b%d h%d t%d s%d", b, h, t, s);
        CHECK(fabs(sum - 1) <= 1e-6, "att row sum %g", sum);
    }
    fill_const(d, n, 1.0f);
    attention_backward(d, d + nq, d + nq + nk, datt_buf, g, att, x, x + nq, x + nq + nk, B, T, H, KVH, HD);
    fd_grad(num, x, n, att_loss, &ctx);
    sprintf(name, "attention KVH=%d dq", KVH); check_grad(name, d, num, nq);
    sprintf(name, "attention KVH=%d dk", KVH); check_grad(name, d + nq, num + nq, nk);
    sprintf(name, "attention KVH=%d dv", KVH); check_grad(name, d + nq + nk, num + nq + nk, nk);
    /* the documented loop orders, bit for bit */
    fill_const(d_r, n, 1.0f);
    ref_attention(out_r, att_r, d_r, d_r + nq, d_r + nq + nk, g, x, x + nq, x + nq + nk, B, T, H, KVH, HD);
    CHECK(memcmp(out, out_r, nq * sizeof(float)) == 0, "KVH=%d forward differs from documented order", KVH);
    CHECK(memcmp(att, att_r, natt * sizeof(float)) == 0, "KVH=%d att differs from documented order", KVH);
    CHECK(memcmp(d, d_r, n * sizeof(float)) == 0, "KVH=%d backward differs from documented order", KVH);
    free(x); free(g); free(out); free(att); free(d); free(out_r); free(att_r); free(d_r);
    free(gd); free(num); free(outd); free(xd);
}

/* bit-exact against the documented order on shapes that exercise every path of the tiled
 * kernels: T and hd not multiples of 4 or 16, T > 256 and hd > 256 (several k-chunks) */
static void test_attention_bitexact(void) {
    static const int shapes[][5] = { {1, 37, 4, 2, 20}, {2, 19, 2, 1, 16}, {1, 300, 1, 1, 8}, {1, 9, 2, 2, 260},
                                     {1, 64, 4, 4, 32}, {1, 1, 2, 1, 3}, {1, 200, 2, 1, 48}, {1, 131, 1, 1, 96} };
    int c;
    for (c = 0; c < (int)(sizeof shapes / sizeof shapes[0]); c++) {
        int B = shapes[c][0], T = shapes[c][1], H = shapes[c][2], KVH = shapes[c][3], hd = shapes[c][4];
        size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd, na = (size_t)B * H * T * T;
        size_t n = nq + 2 * nk;
        float *x = falloc(n), *g = falloc(nq), *out = falloc(nq), *att = falloc(na), *d = falloc(n);
        float *out_r = falloc(nq), *att_r = falloc(na), *d_r = falloc(n), *buf = falloc((size_t)T * T);
        fill(x, n, 1.0f); fill(g, nq, 1.0f); fill(d, n, 0.5f);
        memcpy(d_r, d, n * sizeof(float));
        attention_forward(out, att, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
        attention_backward(d, d + nq, d + nq + nk, buf, g, att, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
        ref_attention(out_r, att_r, d_r, d_r + nq, d_r + nq + nk, g, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
        CHECK(memcmp(out, out_r, nq * sizeof(float)) == 0, "forward differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
        CHECK(memcmp(att, att_r, na * sizeof(float)) == 0, "att differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
        CHECK(memcmp(d, d_r, nq * sizeof(float)) == 0, "dq differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
        CHECK(memcmp(d + nq, d_r + nq, nk * sizeof(float)) == 0, "dk differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
        CHECK(memcmp(d + nq + nk, d_r + nq + nk, nk * sizeof(float)) == 0, "dv differs, shape %d,%d,%d,%d,%d",
              B, T, H, KVH, hd);
        {   /* the lean pair (no saved probabilities, recomputed in backward) gives the same bytes */
            float *out_l = falloc(nq), *d_l = falloc(n), *scr = falloc(2 * (size_t)T * T);
            fill_const(out_l, nq, 7.0f);
            memcpy(d_l, d_r, n * sizeof(float));
            fill(d, n, 0.5f); memcpy(d_l, d, n * sizeof(float));
            attention_backward(d, d + nq, d + nq + nk, buf, g, att, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
            attention_forward_lean(out_l, scr, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
            fill_const(scr, 2 * (size_t)T * T, -3.0f);   /* backward must not rely on what forward left */
            attention_backward_lean(d_l, d_l + nq, d_l + nq + nk, scr, g, x, x + nq, x + nq + nk, B, T, H, KVH, hd);
            CHECK(memcmp(out_l, out, nq * sizeof(float)) == 0, "lean forward differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
            CHECK(memcmp(d_l, d, n * sizeof(float)) == 0, "lean backward differs, shape %d,%d,%d,%d,%d", B, T, H, KVH, hd);
            free(out_l); free(d_l); free(scr);
        }
        free(x); free(g); free(out); free(att); free(d); free(out_r); free(att_r); free(d_r); free(buf);
    }
}

/* decoding with a KV cache (keys in blocks of ATT_BLOCK positions, position
 * fastest; values head by head) must give the training forward's bits, row by
 * row, also past the first block */
static void test_attention_row(void) {
    enum { B = 2, T = 2 * ATT_BLOCK + 9, H = 4, KVH = 2, HD = 20, TC = 3 * ATT_BLOCK };
    size_t nq = (size_t)B * T * H * HD, nk = (size_t)B * T * KVH * HD;
    float *q = falloc(nq), *k = falloc(nk), *v = falloc(nk), *out = falloc(nq), *att = falloc((size_t)B * H * T * T);
    float *kc = falloc((size_t)KVH * TC * HD), *vc = falloc((size_t)KVH * TC * HD), row[H * HD], scratch[T];
    float *k0 = falloc((size_t)KVH * TC * HD), *v0 = falloc((size_t)KVH * TC * HD);
    float *k1 = falloc((size_t)KVH * TC * HD), *v1 = falloc((size_t)KVH * TC * HD);
    int b, t, h, j, bad = 0;
    fill(q, nq, 2.0f); fill(k, nk, 2.0f); fill(v, nk, 1.0f);
    attention_forward(out, att, q, k, v, B, T, H, KVH, HD);
    for (b = 0; b < B; b++) {
        fill_const(kc, (size_t)KVH * TC * HD, 9.0f);   /* positions not yet cached must not be read */
        fill_const(vc, (size_t)KVH * TC * HD, 9.0f);
        for (t = 0; t < T; t++) {
            size_t qo = ((size_t)b * T + t) * H * HD;
            for (h = 0; h < KVH; h++)
                for (j = 0; j < HD; j++) {
                    size_t src = ((size_t)b * T + t) * KVH * HD + (size_t)h * HD + j;
                    kc[(size_t)h * TC * HD + (size_t)(t / ATT_BLOCK) * HD * ATT_BLOCK + (size_t)j * ATT_BLOCK + t % ATT_BLOCK] = k[src];
                    vc[(size_t)h * TC * HD + (size_t)t * HD + j] = v[src];
                }
            {   /* the whole cache in one part, and split over three (the other parts' copies of
                     * positions past their upto are poisoned: they must not be read) */
                AttCache one, three;
                int u;
                one.k[0] = one.k[1] = one.k[2] = kc; one.v[0] = one.v[1] = one.v[2] = vc; one.upto[0] = one.upto[1] = 0;
                attention_row_forward(row, scratch, q + qo, &one, t + 1, TC, H, KVH, HD);
                bad += memcmp(row, out + qo, sizeof row) != 0;
                memcpy(k0, kc, sizeof(float) * KVH * TC * HD); memcpy(v0, vc, sizeof(float) * KVH * TC * HD);
                memcpy(k1, kc, sizeof(float) * KVH * TC * HD); memcpy(v1, vc, sizeof(float) * KVH * TC * HD);
                for (h = 0; h < KVH; h++)
                    for (u = ATT_BLOCK; u < TC; u++) for (j = 0; j < HD; j++) {   /* part 0: only its first block */
                        k0[(size_t)h * TC * HD + (size_t)u * HD + j] = 1e30f; v0[(size_t)h * TC * HD + (size_t)u * HD + j] = 1e30f;
                    }
                for (h = 0; h < KVH; h++)
                    for (u = 0; u < ATT_BLOCK; u++) for (j = 0; j < HD; j++) {    /* part 1: only its second */
                        size_t at = (size_t)h * TC * HD + (size_t)u * HD + j;
                        k1[at] = -1e30f; v1[at] = -1e30f; k1[at + (size_t)2 * ATT_BLOCK * HD] = -1e30f; v1[at + (size_t)2 * ATT_BLOCK * HD] = -1e30f;
                    }
                three.k[0] = k0; three.v[0] = v0; three.k[1] = k1; three.v[1] = v1; three.k[2] = kc; three.v[2] = vc;
                three.upto[0] = ATT_BLOCK; three.upto[1] = 2 * ATT_BLOCK;
                attention_row_forward(row, scratch, q + qo, &three, t + 1, TC, H, KVH, HD);
                bad += memcmp(row, out + qo, sizeof row) != 0;
            }
        }
    }
    CHECK(bad == 0, "%d of %d decoded rows differ from attention_forward", bad, 2 * B * T);
    free(q); free(k); free(v); free(out); free(att); free(kc); free(vc); free(k0); free(v0); free(k1); free(v1);
}

static void test_attention_mha(void) { attention_case(4); }
static void test_attention_gqa2(void) { attention_case(2); }
static void test_attention_mqa(void) { attention_case(1); }

/* changing the key/value at position 3 of batch 0 must leave every output at t < 3 unchanged */
static void test_attention_causal(void) {
    enum { B = 2, T = 6, H = 4, KVH = 2, HD = 8, CUT = 3 };
    size_t nq = (size_t)B * T * H * HD, nk = (size_t)B * T * KVH * HD, row = (size_t)H * HD;
    float *q = falloc(nq), *k = falloc(nk), *v = falloc(nk), *o1 = falloc(nq), *o2 = falloc(nq);
    float *att = falloc((size_t)B * H * T * T);
    size_t i;
    fill(q, nq, 1.0f); fill(k, nk, 1.0f); fill(v, nk, 1.0f);
    attention_forward(o1, att, q, k, v, B, T, H, KVH, HD);
    for (i = 0; i < (size_t)KVH * HD; i++) { k[CUT * KVH * HD + i] += 3.0f; v[CUT * KVH * HD + i] -= 2.0f; }
    attention_forward(o2, att, q, k, v, B, T, H, KVH, HD);
    CHECK(memcmp(o1, o2, CUT * row * sizeof(float)) == 0, "a future key/value changed an earlier output");
    CHECK(memcmp(o1 + CUT * row, o2 + CUT * row, row * sizeof(float)) != 0, "output at the changed position did not change");
    CHECK(memcmp(o1 + T * row, o2 + T * row, T * row * sizeof(float)) == 0, "batch 1 changed");
    free(q); free(k); free(v); free(o1); free(o2); free(att);
}

/* ------------------------------------------------------------ swiglu, residual */

typedef struct { size_t n; const double *g; } EwCtx; /* x = [a | b] */

static double swiglu_loss(const double *x, const void *vctx) {
    const EwCtx *c = vctx;
    double L = 0;
    size_t i;
    for (i = 0; i < c->n; i++) L += c->g[i] * (x[i] / (1 + exp(-x[i]))) * x[c->n + i];
    return L;
}

static double residual_loss(const double *x, const void *vctx) {
    const EwCtx *c = vctx;
    double L = 0;
    size_t i;
    for (i = 0; i < c->n; i++) L += c->g[i] * (x[i] + x[c->n + i]);
    return L;
}

static void test_swiglu(void) {
    enum { N = 24 };
    float x[2 * N], g[N], out[N], d[2 * N];
    double gd[N], num[2 * N];
    EwCtx ctx = { N, gd };
    int i;
    fill(x, 2 * N, 4.0f); fill(g, N, 1.0f);
    x[0] = 0.0f; x[1] = -20.0f; x[2] = 20.0f;
    for (i = 0; i < N; i++) gd[i] = g[i];
    swiglu_forward(out, x, x + N, N);
    for (i = 0; i < N; i++) {
        double r = x[i] / (1 + exp(-(double)x[i])) * x[N + i];
        CHECK(fabs(out[i] - r) <= 1e-5 * (1 + fabs(r)), "swiglu out[%d] %g vs %g", i, out[i], r);
    }
    fill_const(d, 2 * N, 1.0f);
    swiglu_backward(d, d + N, g, x, x + N, N);
    fd_grad(num, x, 2 * N, swiglu_loss, &ctx);
    check_grad("swiglu da", d, num, N);
    check_grad("swiglu db", d + N, num + N, N);
}

/* the fused pair (one exponential per element, sigmoids kept) gives the plain pair's bytes */
static void test_swiglu_sig(void) {
    enum { N = 1000 };
    static const float special[] = { 0.0f, -0.0f, 1e-40f, -1e-40f, 88.8f, -88.8f, -129.0f, 200.0f, -200.0f, 1e30f };
    float *a = falloc(N), *b = falloc(N), *g = falloc(N), *o1 = falloc(N), *o2 = falloc(N), *sig = falloc(N);
    float *da1 = falloc(N), *db1 = falloc(N), *da2 = falloc(N), *db2 = falloc(N);
    size_t i;
    fill(a, N, 12.0f); fill(b, N, 2.0f); fill(g, N, 1.0f);
    for (i = 0; i < sizeof special / sizeof special[0]; i++) a[i] = special[i];
    a[20] = 1.0f / 0.0f; a[21] = -1.0f / 0.0f; a[22] = f32_from_bits(0x7fc00000u);
    fill(da1, N, 0.5f); memcpy(da2, da1, N * sizeof(float));
    fill(db1, N, -0.5f); memcpy(db2, db1, N * sizeof(float));
    swiglu_forward(o1, a, b, N);
    swiglu_forward_sig(o2, sig, a, b, N);
    CHECK(memcmp(o1, o2, N * sizeof(float)) == 0, "swiglu_forward_sig's output differs from swiglu_forward's");
    for (i = 0; i < N; i++) {
        float want = ts_sigmoidf(a[i]);
        CHECK(memcmp(&sig[i], &want, sizeof want) == 0, "sig[%lu] %g, ts_sigmoidf %g", (unsigned long)i, sig[i], want);
    }
    swiglu_backward(da1, db1, g, a, b, N);
    swiglu_backward_sig(da2, db2, g, a, b, sig, N);
    CHECK(memcmp(da1, da2, N * sizeof(float)) == 0 && memcmp(db1, db2, N * sizeof(float)) == 0,
          "swiglu_backward_sig's gradients differ from swiglu_backward's");
    free(a); free(b); free(g); free(o1); free(o2); free(sig); free(da1); free(db1); free(da2); free(db2);
}

static void test_residual(void) {
    enum { N = 10 };
    float x[2 * N], g[N], out[N], d[2 * N];
    double gd[N], num[2 * N];
    EwCtx ctx = { N, gd };
    int i;
    fill(x, 2 * N, 1.0f); fill(g, N, 1.0f);
    for (i = 0; i < N; i++) gd[i] = g[i];
    residual_forward(out, x, x + N, N);
    for (i = 0; i < N; i++) CHECK(out[i] == x[i] + x[N + i], "residual out[%d]", i);
    fill_const(d, 2 * N, 1.0f);
    residual_backward(d, d + N, g, N);
    fd_grad(num, x, 2 * N, residual_loss, &ctx);
    check_grad("residual da", d, num, N);
    check_grad("residual db", d + N, num + N, N);
}

/* ------------------------------------------------------------ dropout */

typedef struct { size_t n; const float *mask; const double *g; } DropCtx;

static double dropout_loss(const double *x, const void *vctx) {
    const DropCtx *c = vctx;
    double L = 0;
    size_t i;
    for (i = 0; i < c->n; i++) L += c->g[i] * x[i] * c->mask[i];
    return L;
}

static void test_dropout(void) {
    enum { N = 100000, SMALL = 32 };
    const float p = 0.25f, keep = 1.0f / (1.0f - p);
    float *x = falloc(N), *out = falloc(N), *mask = falloc(N), *mask2 = falloc(N), *out2 = falloc(N);
    float g[SMALL], d[SMALL];
    double gd[SMALL], num[SMALL], frac;
    DropCtx ctx;
    size_t i, dropped = 0, bad = 0;
    fill(x, N, 1.0f);
    dropout_forward(out, mask, x, N, 0.0f, 42, 0);
    CHECK(memcmp(out, x, N * sizeof(float)) == 0, "p=0 is not the identity");
    for (i = 0; i < N; i++) bad += mask[i] != 1.0f;
    CHECK(bad == 0, "p=0 mask not all ones (%zu)", bad);
    dropout_forward(out, mask, x, N, p, 42, 0);
    for (i = 0; i < N; i++) {
        if (mask[i] == 0.0f) { dropped++; bad += out[i] != 0.0f; }
        else bad += mask[i] != keep || out[i] != x[i] * keep;
    }
    frac = (double)dropped / N;  /* sd = sqrt(p(1-p)/N) = 0.0014; 0.01 is 7 sd */
    CHECK(fabs(frac - p) < 0.01, "dropped fraction %g, expected %g", frac, (double)p);
    CHECK(bad == 0, "%zu elements neither 0 nor x/(1-p)", bad);
    dropout_forward(out2, mask2, x, N, p, 42, 0);
    CHECK(memcmp(mask, mask2, N * sizeof(float)) == 0, "same seed gave a different mask");
    dropout_forward(out2, mask2, x, 1000, p, 42, 0);  /* counter-based: a prefix sees the same mask */
    CHECK(memcmp(mask, mask2, 1000 * sizeof(float)) == 0, "mask depends on n");
    dropout_forward(out2, mask2, x + 700, 300, p, 42, 700);  /* and a slice the slice of it */
    CHECK(memcmp(mask + 700, mask2, 300 * sizeof(float)) == 0, "a slice at index 700 got another mask");
    dropout_forward(out2, mask2, x, N, p, 43, 0);
    CHECK(memcmp(mask, mask2, N * sizeof(float)) != 0, "a different seed gave the same mask");
    memcpy(out2, x, N * sizeof(float));  /* in place, and without a mask */
    dropout_forward(out2, NULL, out2, N, p, 42, 0);
    CHECK(memcmp(out, out2, N * sizeof(float)) == 0, "in-place/no-mask dropout differs");
    dropout_forward(out2, mask2, x, N, 1.0f, 42, 0);
    for (i = 0, bad = 0; i < N; i++) bad += out2[i] != 0.0f || mask2[i] != 0.0f;
    CHECK(bad == 0, "p=1 kept %zu elements", bad);
    fill(g, SMALL, 1.0f);
    for (i = 0; i < SMALL; i++) gd[i] = g[i];
    ctx.n = SMALL; ctx.mask = mask; ctx.g = gd;
    fill_const(d, SMALL, 1.0f);
    dropout_backward(d, g, mask, SMALL);
    fd_grad(num, x, SMALL, dropout_loss, &ctx);
    check_grad("dropout dinp", d, num, SMALL);
    free(x); free(out); free(mask); free(mask2); free(out2);
}

/* ------------------------------------------------------------ softmax cross-entropy */

typedef struct { int N, V; const int *tgt; const double *dl; } CeCtx;

static double ce_loss(const double *x, const void *vctx) {
    const CeCtx *c = vctx;
    double L = 0;
    int n, v;
    for (n = 0; n < c->N; n++) {
        const double *r = x + n * c->V;
        double m = r[0], z = 0;
        if (c->tgt[n] < 0) continue;
        for (v = 1; v < c->V; v++) if (r[v] > m) m = r[v];
        for (v = 0; v < c->V; v++) z += exp(r[v] - m);
        L += c->dl[n] * -(r[c->tgt[n]] - m - log(z));
    }
    return L;
}

static void test_softmax_ce(void) {
    enum { N = 4, V = 9 };
    static const int tgt[N] = { 3, 0, -1, 8 };
    float x[N * V], probs[N * V], loss[N], dl[N] = { 0.7f, -1.3f, 2.0f, 0.4f }, d[N * V];
    double dld[N], num[N * V];
    CeCtx ctx;
    int n, v;
    fill(x, N * V, 3.0f);
    for (n = 0; n < N; n++) dld[n] = dl[n];
    ctx.N = N; ctx.V = V; ctx.tgt = tgt; ctx.dl = dld;
    softmax_crossentropy_forward(loss, probs, x, tgt, N, V);
    for (n = 0; n < N; n++) {
        double sum = 0, m = x[n * V], z = 0;
        for (v = 0; v < V; v++) sum += probs[n * V + v];
        CHECK(fabs(sum - 1) <= 1e-5, "row %d probs sum to %g", n, sum);
        for (v = 1; v < V; v++) if (x[n * V + v] > m) m = x[n * V + v];
        for (v = 0; v < V; v++) z += exp(x[n * V + v] - m);
        if (tgt[n] >= 0) {
            double ref = -(x[n * V + tgt[n]] - m - log(z));
            CHECK(fabs(loss[n] - ref) <= 1e-5 * (1 + ref), "loss[%d] %g vs %g", n, loss[n], ref);
        }
    }
    CHECK(loss[2] == 0.0f, "ignored target has loss %g", loss[2]);
    fill_const(d, N * V, 1.0f);
    softmax_crossentropy_backward(d, dl, probs, tgt, N, V);
    for (v = 0; v < V; v++) CHECK(d[2 * V + v] == 1.0f, "ignored row got a gradient at %d", v);
    fd_grad(num, x, N * V, ce_loss, &ctx);
    check_grad("softmax_ce dlogits", d, num, N * V);
}

/* the documented order (sequential max, exps, in-order sum, division), bit for bit: rows run
 * four at a time with their sums side by side and the max in lanes */
static void ref_softmax_ce(float *losses, float *probs, const float *logits, const int *targets, int N, int V) {
    int n, v;
    for (n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V, m = x[0], s = 0.0f;
        int t = targets[n];
        for (v = 1; v < V; v++) if (x[v] > m) m = x[v];
        for (v = 0; v < V; v++) p[v] = ts_expf(x[v] - m);
        for (v = 0; v < V; v++) s += p[v];
        for (v = 0; v < V; v++) p[v] = p[v] / s;
        losses[n] = t < 0 ? 0.0f : -((x[t] - m) - ts_logf(s));
    }
}

static void test_softmax_ce_bitexact(void) {
    static const int Vs[] = { 1, 5, 8, 15, 16, 17, 40, 768 };
    int iv, N, n, v;
    for (iv = 0; iv < (int)(sizeof Vs / sizeof Vs[0]); iv++)
        for (N = 1; N <= 11; N += 5) {
            int V = Vs[iv], tg[11];
            size_t nv = (size_t)N * V;
            float *x = falloc(nv), *p = falloc(nv), *pr = falloc(nv), loss[11], lr[11];
            fill(x, nv, 4.0f);
            for (n = 0; n < N; n++) tg[n] = (n * 7 + 3) % V;
            if (N > 1 && V > 1) {   /* a row whose maximum is a tie of -0 and +0, the target a zero */
                for (v = 0; v < V; v++) x[V + v] = -1.0f - (float)v;
                x[V + V / 2] = -0.0f; x[V + V - 1] = 0.0f; tg[1] = V - 1;
            }
            if (N > 2 && V > 2) x[2 * V + 1] = f32_from_bits(0x7fc00001u);  /* a NaN, not first */
            if (N > 3) x[3 * V] = f32_from_bits(0xffc00002u);                /* a NaN first */
            if (N > 4 && V > 3) { x[4 * V] = -1.0f / 0.0f; x[4 * V + 2] = 1e30f; }
            softmax_crossentropy_forward(loss, p, x, tg, N, V);
            ref_softmax_ce(lr, pr, x, tg, N, V);
            CHECK(memcmp(p, pr, nv * sizeof(float)) == 0, "probs differ from the documented order, N=%d V=%d", N, V);
            CHECK(memcmp(loss, lr, (size_t)N * sizeof(float)) == 0, "losses differ from the documented order, N=%d V=%d", N, V);
            free(x); free(p); free(pr);
        }
}

static void test_softmax_ce_extremes(void) {
    enum { N = 4, V = 5 };
    static const int tgt[N] = { 1, 0, 2, 5 };  /* the last is out of range: loss NaN, nothing read */
    float x[N * V] = { 1e4f, -1e4f, 0.0f, 1e4f, -1e4f,
                       -1e4f, -1e4f, -1e4f, -1e4f, -1e4f,
                       1e30f, -1e30f, 1e30f, 0.0f, 3.0f,
                       0.0f, 1.0f, 2.0f, 3.0f, 4.0f };
    float probs[N * V], loss[N], dl[N] = { 1, 1, 1, 1 }, d[N * V] = { 0 };
    int n, v;
    softmax_crossentropy_forward(loss, probs, x, tgt, N, V);
    for (n = 0; n < 3; n++) {
        double sum = 0;
        CHECK(f32_isfinite(loss[n]) && loss[n] >= 0.0f, "row %d loss %g not finite/non-negative", n, loss[n]);
        for (v = 0; v < V; v++) {
            CHECK(f32_isfinite(probs[n * V + v]), "row %d prob %d not finite", n, v);
            sum += probs[n * V + v];
        }
        CHECK(fabs(sum - 1) <= 1e-5, "row %d probs sum to %g", n, sum);
    }
    CHECK(fabs(loss[0] - (2e4 + log(2.0))) <= 0.01, "target at -1e4 among two +1e4: loss %g, want 2e4 + ln 2", loss[0]);
    CHECK(fabs(loss[1] - log(5.0)) <= 1e-6, "uniform row: loss %g, want ln 5", loss[1]);
    CHECK(loss[3] != loss[3], "target >= V should give a NaN loss, got %g", loss[3]);
    softmax_crossentropy_backward(d, dl, probs, tgt, N, V);
    for (v = 0; v < V; v++) CHECK(d[3 * V + v] == 0.0f, "out-of-range target row got a gradient");
    for (n = 0; n < 3 * V; n++) CHECK(f32_isfinite(d[n]), "dlogits[%d] not finite", n);
}

int main(void) {
    RUN(test_matmul_bitexact);
    RUN(test_matmul_packed_bitexact);
    RUN(test_matmul_grad);
    RUN(test_embedding);
    RUN(test_rmsnorm);
    RUN(test_rmsnorm_bitexact);
    RUN(test_rope);
    RUN(test_attention_mha);
    RUN(test_attention_gqa2);
    RUN(test_attention_mqa);
    RUN(test_attention_causal);
    RUN(test_attention_bitexact);
    RUN(test_attention_row);
    RUN(test_swiglu);
    RUN(test_swiglu_sig);
    RUN(test_residual);
    RUN(test_dropout);
    RUN(test_softmax_ce);
    RUN(test_softmax_ce_extremes);
    RUN(test_softmax_ce_bitexact);
    return check_summary();
}
