/* tensor.h - srlm's numerics: deterministic math, RNG, SHA-256, total-order
 * sorting, and the transformer ops, each forward beside its backward.
 *
 * Reproducibility contract (see README "Bit reproducibility"):
 *  - only + - * / and sqrtf on IEEE-754 binary32/binary64, no FMA contraction
 *    (build with -ffp-contract=off), FLT_EVAL_METHOD == 0;
 *  - every reduction has one order written in the code. For the matrix ops
 *    that order is: each output element is a plain sequential sum over the
 *    contraction index in increasing order, starting from 0.0f (forward) or
 *    from the value already in the output (backward, which accumulates +=).
 *    Speed work may tile or vectorise across *independent* outputs only.
 *
 * Layouts follow llm.c: activations are (N, C) row-major with N = B*T rows;
 * a linear layer's weight is (OC, C) like torch.nn.Linear, out = inp @ W^T.
 */
#ifndef SRLM_TENSOR_H
#define SRLM_TENSOR_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Float arithmetic must round to float at every step: a compiler that keeps
 * wider intermediates (FLT_EVAL_METHOD 1 or 2) gives other bits, silently.
 * Each target that needs a flag for it is named (README, "Platforms"). */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#if defined(__i386__) || defined(_M_IX86)
#error "srlm needs FLT_EVAL_METHOD == 0: on 32-bit x86 build with -msse2 -mfpmath=sse (SSE2 floats, not x87)"
#elif defined(__s390__) || defined(__s390x__)
#error "srlm needs FLT_EVAL_METHOD == 0: on s390x build with -fexcess-precision=fast (gcc's -std=c99 evaluates float in double there)"
#else
#error "srlm needs FLT_EVAL_METHOD == 0 (float arithmetic rounded to float at each step); see README, Platforms"
#endif
#endif

/* ------------------------------------------------------------------------
 * Deterministic scalar math (no libm transcendental anywhere).
 * Accuracy is stated beside each definition in tensor.c and tested in
 * tests/test_math.c against libm in double/long double over >= 1e6 inputs.
 * ---------------------------------------------------------------------- */
float ts_expf(float x);     /* e^x; NaN->NaN, +inf->+inf, -inf->0, overflow->+inf, underflow to denormals then 0 */
float ts_logf(float x);     /* ln x; x<0 or NaN->NaN, +-0->-inf, +inf->+inf, denormal inputs handled */
float ts_sigmoidf(float x); /* 1/(1+e^-x), never NaN for finite x */
float ts_siluf(float x);    /* x*sigmoid(x) */
double ts_exp(double x);    /* double versions, for tables and statistics (not hot paths) */
double ts_log(double x);
double ts_sin(double x);    /* |x| up to 1e6 with full range reduction accuracy stated in tensor.c */
double ts_cos(double x);

/* ------------------------------------------------------------------------
 * Random numbers: PCG32 (O'Neill 2014, XSH-RR 64/32) seeded through
 * splitmix64. Each use has its own named stream so turning one feature on
 * never shifts another feature's numbers.
 * ---------------------------------------------------------------------- */
typedef struct { uint64_t state, inc; } Rng;
enum { RNG_STREAM_INIT = 1, RNG_STREAM_DATA = 2, RNG_STREAM_DROPOUT = 3, RNG_STREAM_SAMPLE = 4,
       RNG_STREAM_WORLD = 5, RNG_STREAM_AIFT = 6 };
uint64_t splitmix64(uint64_t *x);                 /* advances *x, returns next output */
uint64_t hash64(uint64_t a, uint64_t b);          /* counter-based mix of two words (dropout masks) */
void rng_init(Rng *r, uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *r);
uint32_t rng_below(Rng *r, uint32_t n);           /* uniform in [0,n), unbiased (rejection), n>0 */
float rng_uniform(Rng *r);                         /* (u32>>8) * 2^-24, in [0,1) */
float rng_normal(Rng *r);                          /* N(0,1), Box-Muller on own log/sin/cos, one value per 2 draws */
int rng_categorical(Rng *r, const float *p, int n); /* p >= 0 (need not sum to 1): first i with cumsum > u*total */

/* ------------------------------------------------------------------------
 * SHA-256 (FIPS 180-4) and total-order sorting.
 * ---------------------------------------------------------------------- */
typedef struct { uint32_t h[8]; uint64_t nbytes; uint8_t buf[64]; size_t nbuf; } Sha256;
void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[32]);
void sha256(const void *data, size_t n, uint8_t out[32]);
void sha256_hex(const uint8_t digest[32], char out[65]); /* lowercase, NUL-terminated */
/* Where the build targets the x86 SHA extensions (__SHA__), blocks are hashed with them, else in
 * portable C; both give the same digest. enable 0/1 selects (tests compare the two), -1 asks.
 * Returns 1 when the hardware path is in use. */
int sha256_hardware(int enable);

/* Stable merge sort: equal elements keep their input order on every libc. */
typedef int (*sort_cmp_fn)(const void *a, const void *b, void *ctx);
void stable_sort(void *base, size_t n, size_t size, sort_cmp_fn cmp, void *ctx);
/* idx[0..n) = permutation ordering val descending; ties by index ascending. NaN sorts last. */
void argsort_desc(int *idx, const float *val, int n);

/* ------------------------------------------------------------------------
 * Little-endian byte I/O (files are written byte by byte, never as structs).
 * ---------------------------------------------------------------------- */
static inline void le_put_u32(uint8_t *p, uint32_t v) { p[0]=(uint8_t)v; p[1]=(uint8_t)(v>>8); p[2]=(uint8_t)(v>>16); p[3]=(uint8_t)(v>>24); }
static inline uint32_t le_get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1]<<8 | (uint32_t)p[2]<<16 | (uint32_t)p[3]<<24; }
static inline void le_put_u64(uint8_t *p, uint64_t v) { le_put_u32(p, (uint32_t)v); le_put_u32(p+4, (uint32_t)(v>>32)); }
static inline uint64_t le_get_u64(const uint8_t *p) { return (uint64_t)le_get_u32(p) | (uint64_t)le_get_u32(p+4)<<32; }
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline void le_put_f32(uint8_t *p, float f) { le_put_u32(p, f32_bits(f)); }
static inline float le_get_f32(const uint8_t *p) { return f32_from_bits(le_get_u32(p)); }
static inline int f32_isfinite(float f) { return (f32_bits(f) & 0x7f800000u) != 0x7f800000u; }

/* ------------------------------------------------------------------------
 * Ops. Forward writes its output; backward ACCUMULATES (+=) into every
 * gradient it is given (NULL = not wanted). Arguments: outputs first, then
 * inputs, then weights, then sizes.
 * ---------------------------------------------------------------------- */

/* out (N,OC) = inp (N,C) @ weight(OC,C)^T. out[n][o] = sum_{c=0..C-1} inp[n][c]*w[o][c], sequential in c from 0.0f. */
void matmul_forward(float *out, const float *inp, const float *weight, int N, int C, int OC);
/* dinp[n][c] += sum_{o=0..OC-1} dout[n][o]*w[o][c] (sequential in o, added to the existing dinp one term at a time)
 * dweight[o][c] += sum_{n=0..N-1} dout[n][o]*inp[n][c] (sequential in n, likewise). */
void matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight, int N, int C, int OC);
/* The same, but dinp is overwritten: its sums start from 0.0f, the bytes a zeroed dinp then
 * matmul_backward give, without the zeroing pass (dweight still accumulates). */
void matmul_backward_set(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight, int N, int C, int OC);

/* The same product from a packed copy of the weight, for decoding (the weight is packed once, then
 * read by many one-row products): matmul_pack writes matmul_packed_size(C, OC) floats; the result
 * is bit-identical to matmul_forward's. */
size_t matmul_packed_size(int C, int OC);
void matmul_pack(float *packed, const float *weight, int C, int OC);
void matmul_forward_packed(float *out, const float *inp, const float *packed, int N, int C, int OC);

/* out (N,C) = wte[tokens[n]] */
void embedding_forward(float *out, const int *tokens, const float *wte, int N, int C);
/* dwte[tokens[n]] += dout[n], rows processed n = 0..N-1 in order */
void embedding_backward(float *dwte, const float *dout, const int *tokens, int N, int C);

/* RMSNorm: rstd[n] = 1/sqrtf(mean_c(x^2) + eps) (sum sequential in c); out = x * rstd * weight */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps);
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, int N, int C);

/* RoPE on interleaved pairs (2i, 2i+1) of each head (llama2.c / Meta convention):
 *   out[2i]   = x[2i]*cos - x[2i+1]*sin,  out[2i+1] = x[2i]*sin + x[2i+1]*cos,
 * angle = pos[n] * theta^(-2i/head_dim); tables (max_pos, head_dim/2) from rope_tables.
 * inp/out (N, H, head_dim); out may equal inp. Backward applies the inverse rotation and adds. */
void rope_tables(float *cos_tab, float *sin_tab, int max_pos, int head_dim, float theta);
void rope_forward(float *out, const float *inp, const int *pos, const float *cos_tab, const float *sin_tab,
                  int N, int H, int head_dim);
void rope_backward(float *dinp, const float *dout, const int *pos, const float *cos_tab, const float *sin_tab,
                   int N, int H, int head_dim);

/* Causal self-attention with grouped-query heads: head h reads kv head h / (H/KVH).
 * q (B,T,H,hd), k and v (B,T,KVH,hd), out (B,T,H,hd), att (B,H,T,T) saves softmax probs (row t uses 0..t).
 * score = (q.k sequential over hd) * (1/sqrtf(hd)); softmax: max, then exp and sum sequential over 0..t;
 * out = sum_{s=0..t} att[s] * v[s] sequential in s. */
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int KVH, int hd);
/* datt_buf: scratch of T*T floats. dq, dk, dv accumulate. */
void attention_backward(float *dq, float *dk, float *dv, float *datt_buf, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int hd);

/* The same two passes keeping no (B,H,T,T) tensor (training memory): forward passes each head's
 * probabilities through scratch (T*T floats); backward recomputes them with the same code (the
 * same floats) into the second half of its scratch (2*T*T floats). Outputs and gradients are
 * byte-identical to attention_forward/attention_backward's (tests/test_ops.c). */
void attention_forward_lean(float *out, float *scratch, const float *q, const float *k, const float *v,
                            int B, int T, int H, int KVH, int hd);
void attention_backward_lean(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                             const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int hd);

/* Decoding: one query row (H, hd) against n_ctx cached positions of one sequence, with the same
 * arithmetic in the same order as a row of attention_forward. The cache of a sequence holding up
 * to T positions (T a multiple of ATT_BLOCK): keys kblk (KVH, T/ATT_BLOCK, hd, ATT_BLOCK), each
 * block the keys of ATT_BLOCK consecutive positions transposed (position fastest); values
 * v (KVH, T, hd). att: scratch of n_ctx floats. */
#define ATT_BLOCK 64
/* Where a sequence's cache is read from: three caches of that layout, positions [0, upto[0]) from
 * part 0, [upto[0], upto[1]) from part 1, the rest from part 2 (0 <= upto[0] <= upto[1], multiples
 * of ATT_BLOCK). The decoder reads a prompt that sequences share from the one sequence that holds
 * it, so it stays in the CPU's cache from one sequence to the next; the numbers are the same. */
typedef struct { const float *k[3], *v[3]; int upto[2]; } AttCache;
void attention_row_forward(float *out, float *att, const float *q, const AttCache *c,
                           int n_ctx, int T, int H, int KVH, int hd);

/* SwiGLU gate, elementwise on n values: out = silu(a) * b */
void swiglu_forward(float *out, const float *a, const float *b, size_t n);
void swiglu_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n);
/* The same pair with the sigmoids kept: forward also writes sig[i] = ts_sigmoidf(a[i]) (from the
 * one exponential silu needs), backward reads them instead of computing them; the same bytes. */
void swiglu_forward_sig(float *out, float *sig, const float *a, const float *b, size_t n);
void swiglu_backward_sig(float *da, float *db, const float *dout, const float *a, const float *b, const float *sig,
                         size_t n);

/* Residual: out = a + b (n values); backward adds dout to both. */
void residual_forward(float *out, const float *a, const float *b, size_t n);
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* Inverted dropout. mask[i] = 0 with probability p else 1/(1-p), decided by hash64(seed, i)
 * (counter-based: the mask never depends on computation order). p == 0 copies. */
void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed, uint64_t first);
void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n);

/* Softmax cross-entropy / target log-probabilities, per row of logits (N,V):
 * m = max, s = sum_v exp(x_v - m) sequential in v, logp[n] = x_t - m - ln s, probs = exp(x-m)/s.
 * losses[n] = -logp[n]. probs (N,V) is saved for backward; it may be logits itself (in place). */
void softmax_crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets, int N, int V);
/* dlogits[n][v] += dlosses[n] * (probs[n][v] - [v == target]); rows with dlosses[n]==0 are skipped. */
void softmax_crossentropy_backward(float *dlogits, const float *dlosses, const float *probs, const int *targets, int N, int V);

/* AdamW on a slice, decoupled weight decay:
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * ( (m/bc1) / (sqrtf(v/bc2) + eps) + wd * p )
 * bc1 = 1 - b1^t, bc2 = 1 - b2^t computed once per step by the caller. */
void adamw_update(float *params, const float *grads, float *m, float *v, size_t n,
                  float lr, float b1, float b2, float eps, float wd, float bc1, float bc2);
/* sum of squares in double, sequential: for global-norm clipping. */
double sum_squares(const float *x, size_t n);

#endif
