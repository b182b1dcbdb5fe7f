/* tensor.c - srlm's numerics: deterministic scalar math, RNG, SHA-256,
 * stable sorting, the optimizer update, and the transformer ops.
 *
 * Everything here is built from IEEE-754 + - * / (and sqrt/sqrtf, which IEEE
 * also rounds correctly), integer bit manipulation, and constants written as
 * hex-float literals, so the same source gives the same bits on every
 * compiler, -O level and architecture (with -ffp-contract=off, see tensor.h).
 * No libm transcendental function is called anywhere.
 *
 * Polynomial coefficients were fitted by a Remez exchange in 200-bit mpmath
 * (minimax of the weighted error over the reduced interval), then rounded to
 * double; the error figures quoted beside each function are *measured* on the
 * final rounded coefficients by tests/test_math.c (and, for the float
 * functions, by an exhaustive run over all 2^32 inputs) against glibc's long
 * double expl/logl/sinl/cosl.
 */
#include "tensor.h"

#include <math.h>   /* sqrt and sqrtf only: correctly rounded by IEEE-754 */
#include <stdlib.h>

/* ------------------------------------------------------------------------
 * Bit helpers for double (the float ones live in tensor.h).
 * ---------------------------------------------------------------------- */

static inline uint64_t f64_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline double f64_from_bits(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/* 2^k for a normal exponent, -1022 <= k <= 1023, built from its bits. */
static inline double pow2i(int k) { return f64_from_bits((uint64_t)(k + 1023) << 52); }

/* Error-free sum: a + b == s + (returned value) exactly (Knuth's TwoSum, no
 * precondition on the magnitudes). */
static inline double two_sum_err(double a, double b, double s)
{
    double bb = s - a;
    return (a - (s - bb)) + (b - bb);
}

/* Adding then subtracting 1.5*2^52 rounds |y| < 2^51 to the nearest integer
 * (ties to even); the sum's low mantissa bits hold that integer + 2^51. */
#define ROUND_SHIFT 0x1.8p52

/* ln 2 split for Cody-Waite reduction: LN2_HI has 32 fractional bits, so
 * k*LN2_HI is exact for |k| < 2^20 and x - k*LN2_HI is exact (Sterbenz).
 * LN2_HI + LN2_LO = ln 2 within 2^-89. */
#define LN2_HI 0x1.62e42ffp-1
#define LN2_LO (-0x1.718432a1b0e26p-35)
#define LN2 0x1.62e42fefa39efp-1
#define INV_LN2 0x1.71547652b82fep+0

/* ========================================================================
 * Deterministic scalar math: float (hot paths)
 * ====================================================================== */

/* e^x for a float x, as a double *before* the final rounding to float, so
 * that ts_expf, ts_sigmoidf and ts_siluf each round exactly once.
 *
 * Working in double makes the float results nearly correctly rounded at no
 * cost in branches: x is clamped to [-128, 128] (e^+-128 is far outside the
 * float range but well inside double's, so overflow to +inf and gradual
 * underflow to denormals and then 0 all happen in the single double->float
 * rounding, correctly). NaN passes the clamps untouched and propagates.
 * Reduction: x = k ln2 + r, |r| <= ln2/2, k = round(x/ln2);
 * e^r by a degree-7 minimax polynomial (relative error 2^-34.5 on the
 * interval); 2^k is built from its exponent bits (|k| <= 185).
 */
static inline double expf_core(float x)
{
    /* the clamp works on the bits (|x| > 128 but not NaN -> +-128): an
     * integer select, which compilers turn into vector blends where a
     * float compare under the default -ftrapping-math stays a branch */
    uint32_t ix = f32_bits(x), ax = ix & 0x7fffffffu;
    ix = (ax > 0x43000000u && ax <= 0x7f800000u) ? (ix & 0x80000000u) | 0x43000000u : ix;
    double xd = (double)f32_from_bits(ix);
    double kd = xd * INV_LN2 + ROUND_SHIFT;
    uint64_t kbits = f64_bits(kd);
    kd -= ROUND_SHIFT;
    double r = (xd - kd * LN2_HI) - kd * LN2_LO;
    double p = 0x1.9eb7269ad2986p-13;
    p = p * r + 0x1.6da4acac46b2cp-10;
    p = p * r + 0x1.1112fa2aaa3c9p-7;
    p = p * r + 0x1.5554687165ddep-5;
    p = p * r + 0x1.555553440390cp-3;
    p = p * r + 0x1.00000059cbe01p-1;
    p = p * r + 0x1.000000010b499p+0;
    p = p * r + 0x1.ffffffffabbcbp-1;
    /* the low 12 bits of kbits are k mod 4096 (the 2^51 offset is a
     * multiple of 4096), so this builds the exponent field of 2^k; for NaN
     * input kbits is junk but p is NaN, so the product is NaN. */
    double scale = f64_from_bits((kbits + 1023u) << 52);
    return p * scale;
}

/* ts_expf: e^x.
 * Max error over all 2^32 float inputs (exhaustive run against expl):
 * 0.5007 ulp: correctly rounded except for 234741 of the 2^32 inputs, whose
 * exact value lies within 2^-10 ulp of a rounding boundary.
 * +inf -> +inf, -inf -> +0, NaN -> NaN, x >= 0x1.62e430p+6 (88.72284) -> +inf,
 * x < -87.34 gives denormals, rounding to 0 below about -103.97. */
float ts_expf(float x)
{
    return (float)expf_core(x);
}

/* ts_logf: ln x.
 * x = 2^e * m with m in [sqrt(1/2), sqrt 2) (denormals are first scaled up by
 * 2^23, exactly), then in double: s = (m-1)/(m+1), ln m = 2 atanh(s) =
 * s*(2 + z*G(z)) with z = s^2 <= 0.0295 and G a degree-3 minimax polynomial
 * (relative error 2^-36.9); ln x = e*ln2 + ln m rounded once to float. The two
 * terms never cancel (|ln m| <= ln2/2), so the double result is accurate to
 * ~2^-36 relative. Max error over all 2^32 inputs (exhaustive, against
 * logl): 0.5001 ulp (correctly rounded for all but 1507 inputs).
 * x < 0 (incl. -inf) and NaN -> NaN, +-0 -> -inf, +inf -> +inf. */
float ts_logf(float x)
{
    uint32_t ix = f32_bits(x);
    int e = 0;
    if (ix - 0x00800000u >= 0x7f000000u) {        /* not a positive normal number */
        if ((ix & 0x7fffffffu) == 0) return f32_from_bits(0xff800000u);   /* +-0 -> -inf */
        if (ix == 0x7f800000u) return x;                                  /* +inf */
        if (ix > 0x7f800000u) return f32_from_bits(0x7fc00000u);         /* NaN, x < 0 */
        ix = f32_bits(x * 0x1p23f);                                       /* denormal: exact */
        e = -23;
    }
    uint32_t mant = ix & 0x007fffffu;
    uint32_t upper = mant >= 0x3504f3u;   /* 1.mant >= sqrt 2 (float-rounded): halve m instead */
    e += (int)(ix >> 23) - 127 + (int)upper;
    double m = (double)f32_from_bits(mant | ((127u - upper) << 23));
    double f = m - 1.0;
    double s = f / (2.0 + f);
    double z = s * s;
    double g = 0x1.e3ad811efd13bp-3;
    g = g * z + 0x1.243598cc262d2p-2;
    g = g * z + 0x1.999a7cd7e1b6ep-2;
    g = g * z + 0x1.555555075a950p-1;
    double ln_m = s * (2.0 + z * g);
    return (float)((double)e * LN2 + ln_m);
}

/* ts_sigmoidf: 1/(1+e^-x) computed in double from expf_core and rounded
 * once; max error over all 2^32 inputs 0.5006 ulp. Never NaN for finite or
 * infinite x: sigmoid(+inf) = 1, sigmoid(-inf) = 0; NaN -> NaN. */
float ts_sigmoidf(float x)
{
    return (float)(1.0 / (1.0 + expf_core(-x)));
}

/* x/den rounded once to float, x clamped below at -128 (den = 1 + e^-x) */
static inline float silu_over(float x, double den)
{
    /* x < -128 and not NaN -> -128, on the bits as in expf_core; written as
     * a mask because gcc would not if-convert a second select here */
    uint32_t ix = f32_bits(x);
    uint32_t clamp = 0u - (uint32_t)((ix > 0xc3000000u) & (ix <= 0xff800000u));
    ix = (ix & ~clamp) | (0xc3000000u & clamp);
    return (float)((double)f32_from_bits(ix) / den);
}

/* ts_siluf: x*sigmoid(x), computed as x/(1+e^-x) in double and rounded once
 * (so it can differ from ts_sigmoidf(x)*x in the last bit); max error over
 * all finite float inputs 0.5007 ulp. Below -128 the true value is under
 * 1e-53 in magnitude, so x is clamped there to make silu(-inf) = -0 instead
 * of -inf*0. silu(+inf) = +inf, NaN -> NaN. */
float ts_siluf(float x)
{
    return silu_over(x, 1.0 + expf_core(-x));
}

/* ========================================================================
 * Deterministic scalar math: double (tables, statistics; not hot paths)
 * ====================================================================== */

/* ts_exp: e^x in double.
 * x = k ln2 + r with the 2-part Cody-Waite ln2 above; r is kept as a
 * double-double (r + r_err) so the reduction adds no error. e^r = 1 + r +
 * r^2 Q(r) with Q a degree-10 minimax polynomial (weighted error 2^-64);
 * 1 + r is formed exactly as hi + lo before the small terms are added, so
 * only the last addition rounds at full weight. Scaling by 2^k: one exact
 * product for normal results; two steps at the ends so overflow gives +inf
 * and gradual underflow rounds once to the denormal.
 * Max error measured: 0.753 ulp over 2e7 inputs spanning [-745, 709.8] and
 * every magnitude down to 2^-60 (the worst cases are denormal results);
 * tests/test_math.c asserts <= 1 ulp.
 * NaN -> NaN, +inf -> +inf, -inf -> +0, x > 709.78 -> +inf, x < -745.13 -> 0. */
double ts_exp(double x)
{
    if (x != x) return x;
    if (x > 709.8) return f64_from_bits(UINT64_C(0x7ff0000000000000));
    if (x < -745.2) return 0.0;
    double kd = x * INV_LN2 + ROUND_SHIFT;
    kd -= ROUND_SHIFT;
    int k = (int)kd;
    double r_hi = x - kd * LN2_HI;              /* exact */
    double r_lo = -(kd * LN2_LO);
    double r = r_hi + r_lo;
    double r_err = two_sum_err(r_hi, r_lo, r);
    double q = 0x1.1e3d3776b679dp-29;
    q = q * r + 0x1.af6bda8c38bb0p-26;
    q = q * r + 0x1.27e5b4328ab25p-22;
    q = q * r + 0x1.71ddf02850692p-19;
    q = q * r + 0x1.a01a0136a006bp-16;
    q = q * r + 0x1.a01a01b37b46cp-13;
    q = q * r + 0x1.6c16c16c30438p-10;
    q = q * r + 0x1.111111110ec65p-7;
    q = q * r + 0x1.5555555555503p-5;
    q = q * r + 0x1.555555555555bp-3;
    q = q * r + 0x1.0000000000000p-1;
    double p = (r * r) * q;
    double hi = 1.0 + r;
    double lo = (1.0 - hi) + r;                 /* exact: |r| < 1 */
    double y = hi + (lo + (p + r_err * hi));    /* e^(r + r_err) ~ e^r (1 + r_err) */
    if (k > 1023) return (y * pow2i(k - 1)) * 2.0;               /* may overflow to +inf */
    if (k < -1021) return (y * pow2i(k + 1000)) * 0x1p-1000;     /* one rounding to denormal */
    return y * pow2i(k);
}

/* ts_log: ln x in double.
 * x = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt 2) (denormals scaled by 2^54
 * first); s = f/(2+f), z = s^2, and ln(1+f) = 2 atanh(s) is evaluated as
 *   f - (f^2/2 - s*(f^2/2 + z*G(z)))
 * (an identity, using 2s = f - s f), which keeps the exact f as the leading
 * term; G is a degree-7 minimax polynomial (relative error 2^-63.8 after
 * rounding the coefficients). e*LN2_HI (exact) + f is summed error-free and
 * the LN2_LO correction folded into the small terms, so only the final
 * addition rounds at full weight.
 * Max error measured: 0.835 ulp over 2e7 inputs (random bit patterns of all
 * positive doubles, denormals included, and [0.25, 4]); the worst cases are
 * just below 2^k/sqrt 2, where |ln x| is smallest relative to f. The tests
 * assert <= 1 ulp.
 * x < 0 and NaN -> NaN, +-0 -> -inf, +inf -> +inf. */
double ts_log(double x)
{
    uint64_t ix = f64_bits(x);
    int e = 0;
    if (ix - UINT64_C(0x0010000000000000) >= UINT64_C(0x7fe0000000000000)) { /* not positive normal */
        if ((ix << 1) == 0) return f64_from_bits(UINT64_C(0xfff0000000000000));
        if (ix == UINT64_C(0x7ff0000000000000)) return x;
        if (ix > UINT64_C(0x7ff0000000000000)) return f64_from_bits(UINT64_C(0x7ff8000000000000));
        ix = f64_bits(x * 0x1p54);
        e = -54;
    }
    uint64_t mant = ix & UINT64_C(0x000fffffffffffff);
    uint64_t upper = mant >= UINT64_C(0x6a09e667f3bcd);   /* 1.mant > sqrt 2 */
    e += (int)(ix >> 52) - 1023 + (int)upper;
    double m = f64_from_bits(mant | ((uint64_t)(1023 - upper) << 52));
    double f = m - 1.0;                                   /* exact */
    double s = f / (2.0 + f);
    double z = s * s;
    double g = 0x1.0f9d5d49dda3dp-3;
    g = g * z + 0x1.0f58e367837cap-3;
    g = g * z + 0x1.3b20b2302c2e7p-3;
    g = g * z + 0x1.745cdf344d511p-3;
    g = g * z + 0x1.c71c7250d9cd7p-3;
    g = g * z + 0x1.2492492437f87p-2;
    g = g * z + 0x1.9999999999cf4p-2;
    g = g * z + 0x1.5555555555555p-1;
    double hfsq = 0.5 * f * f;
    double ed = (double)e;
    /* e*ln2 and ln m have opposite signs when x is just below 1/sqrt 2 * 2^k:
     * add the two big exact terms error-free so only the last sum rounds. */
    double big = ed * LN2_HI;                 /* exact */
    double sum = big + f;
    double sum_err = two_sum_err(big, f, sum);
    return sum + (sum_err - (hfsq - (s * (hfsq + z * g) + ed * LN2_LO)));
}

/* pi/2 in four parts for Cody-Waite reduction. PIO2_1..3 have at most 33
 * significant bits, so k*PIO2_i is exact for |k| < 2^20; their sum with
 * PIO2_4 equals pi/2 within 2^-159.
 * Why four and not three parts: the double nearest a multiple of pi/2 can be
 * very close to it. Searching every k < 2^20 (exact integer arithmetic) shows
 * |x - k pi/2| >= 2^-60.5 and >= k * 2^-72 for all doubles |x| < 2^20, so to
 * keep r accurate to ~2^-60 relative the constant must be good to ~2^-135;
 * three parts (33+33+53 bits) only reach 2^-120. */
#define PIO2_1 0x1.921fb544p+0
#define PIO2_2 0x1.0b4611a6p-34
#define PIO2_3 0x1.3198a2ep-69
#define PIO2_4 0x1.b839a252049c1p-104
#define TWO_OVER_PI 0x1.45f306dc9c883p-1
#define TRIG_MAX 0x1p20   /* supported domain |x| < 2^20 (~1.05e6) */

/* x = k*pi/2 + (*h + *l), |*h| <= pi/4 (+2^-32), *l below half an ulp of *h.
 * Returns k mod 4. Needs |x| < 2^20. */
static int reduce_pio2(double x, double *h, double *l)
{
    double kd = x * TWO_OVER_PI + ROUND_SHIFT;
    uint64_t kbits = f64_bits(kd);          /* low 2 bits: k mod 4 */
    kd -= ROUND_SHIFT;
    double a = x - kd * PIO2_1;             /* exact: product exact, Sterbenz */
    double t2 = kd * PIO2_2, t3 = kd * PIO2_3;   /* exact */
    double s1 = a - t2;
    double e1 = two_sum_err(a, -t2, s1);
    double s2 = s1 - t3;
    double e2 = two_sum_err(s1, -t3, s2);
    double lo = (e1 + e2) - kd * PIO2_4;
    double hi = s2 + lo;
    *l = two_sum_err(s2, lo, hi);
    *h = hi;
    return (int)(kbits & 3u);
}

/* sin(h + l) for |h| <= pi/4: h + h z S(z) + l (1 - z/2), z = h^2,
 * S a degree-6 minimax polynomial (relative error 2^-57 after rounding). */
static double sin_kernel(double h, double l)
{
    double z = h * h;
    double s = -0x1.aa9bd1383fa71p-41;
    s = s * z + 0x1.6120866c887b7p-33;
    s = s * z + -0x1.ae64529359cb5p-26;
    s = s * z + 0x1.71de3a5344c16p-19;
    s = s * z + -0x1.a01a01a018c73p-13;
    s = s * z + 0x1.111111111110cp-7;
    s = s * z + -0x1.5555555555555p-3;
    return h + ((h * z) * s + l * (1.0 - 0.5 * z));
}

/* cos(h + l) for |h| <= pi/4: 1 - z/2 + z^2 C(z) - h l, with 1 - z/2 split
 * into w + its exact rounding error so the big cancellation-free part rounds
 * only once; C a degree-5 minimax polynomial (error 2^-60 after rounding). */
static double cos_kernel(double h, double l)
{
    double z = h * h;
    double c = -0x1.8ff9dc1bf6403p-37;
    c = c * z + 0x1.1eea895c1958ep-29;
    c = c * z + -0x1.27e4f9040a4efp-22;
    c = c * z + 0x1.a01a019e24ee2p-16;
    c = c * z + -0x1.6c16c16c16134p-10;
    c = c * z + 0x1.5555555555553p-5;
    double hz = 0.5 * z;
    double w = 1.0 - hz;
    double w_err = (1.0 - w) - hz;          /* exact: hz <= 0.31 */
    return w + (w_err + ((z * z) * c - h * l));
}

/* ts_sin, ts_cos: reduce by pi/2 (four-part Cody-Waite, above), then the
 * kernel for the quadrant.
 * Domain: |x| < 2^20 (about 1.05e6, covering every RoPE angle), where the
 * reduction is accurate to ~2^-60 relative even for the worst-case inputs.
 * Max error measured over 2e7 inputs (uniform on +-1e6 and on +-8) and the
 * 19 hardest reductions: sin 0.786 ulp, cos 0.787 ulp; tests assert <= 1 ulp.
 * |x| < 2^-27 returns x (sin) / 1 (cos), correctly rounded and keeping
 * sin(-0) = -0.
 * Outside the domain (|x| >= 2^20, +-inf, NaN) both return NaN: loud
 * rather than silently inaccurate, since k*PIO2_1 would stop being exact. */
double ts_sin(double x)
{
    uint64_t ax = f64_bits(x) & UINT64_C(0x7fffffffffffffff);
    if (ax < UINT64_C(0x3e40000000000000)) return x;                 /* |x| < 2^-27 */
    if (!(f64_from_bits(ax) < TRIG_MAX)) return f64_from_bits(UINT64_C(0x7ff8000000000000));
    double h, l;
    switch (reduce_pio2(x, &h, &l)) {
    case 0: return sin_kernel(h, l);
    case 1: return cos_kernel(h, l);
    case 2: return -sin_kernel(h, l);
    default: return -cos_kernel(h, l);
    }
}

double ts_cos(double x)
{
    uint64_t ax = f64_bits(x) & UINT64_C(0x7fffffffffffffff);
    if (ax < UINT64_C(0x3e40000000000000)) return 1.0;
    if (!(f64_from_bits(ax) < TRIG_MAX)) return f64_from_bits(UINT64_C(0x7ff8000000000000));
    double h, l;
    switch (reduce_pio2(x, &h, &l)) {
    case 0: return cos_kernel(h, l);
    case 1: return -sin_kernel(h, l);
    case 2: return -cos_kernel(h, l);
    default: return sin_kernel(h, l);
    }
}

/* ========================================================================
 * Random numbers
 * ====================================================================== */

#define GOLDEN_GAMMA UINT64_C(0x9e3779b97f4a7c15)   /* 2^64 / golden ratio, odd */

/* splitmix64's output finaliser (Stafford's "Mix13"): a bijection on 64-bit
 * words with strong avalanche. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* splitmix64 (Steele, Lea, Flood 2014; Vigna's constants): a Weyl sequence
 * stepped by the golden gamma, each state finalised by mix64. */
uint64_t splitmix64(uint64_t *x)
{
    *x += GOLDEN_GAMMA;
    return mix64(*x);
}

/* hash64(a, b): the (b+1)-th splitmix64 output from a starting state that is
 * itself a hash of a, i.e. mix64(mix64(a) + (b+1)*gamma). For a fixed a it is a
 * bijection of b (distinct dropout indices never collide) and consecutive b
 * are as independent as consecutive splitmix64 outputs. Counter-based: no
 * state, so a mask bit never depends on evaluation order. */
uint64_t hash64(uint64_t a, uint64_t b)
{
    return mix64(mix64(a) + (b + 1) * GOLDEN_GAMMA);
}

/* PCG32 state and odd increment both come from splitmix64 seeded with
 * hash64(seed, stream), so every (seed, stream) pair gets an unrelated
 * sequence *and* a different LCG increment (a different PCG stream). */
void rng_init(Rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t sm = hash64(seed, stream);
    r->state = splitmix64(&sm);
    r->inc = splitmix64(&sm) | 1u;
}

/* PCG32 XSH-RR: 64-bit LCG, output = xorshift-high of the old state rotated
 * by its top 5 bits. */
uint32_t rng_u32(Rng *r)
{
    uint64_t old = r->state;
    r->state = old * UINT64_C(6364136223846793005) + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((0u - rot) & 31u));
}

/* Lemire's multiply-shift with rejection (2019): the high word of u32*n is
 * uniform on [0,n) once the low words below 2^32 mod n are rejected.
 * n == 0 is a caller error: returns 0 without drawing. */
uint32_t rng_below(Rng *r, uint32_t n)
{
    if (n == 0) return 0;
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t reject_below = (0u - n) % n;   /* 2^32 mod n */
        while (low < reject_below) {
            m = (uint64_t)rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float rng_uniform(Rng *r)
{
    return (float)(rng_u32(r) >> 8) * 0x1p-24f;
}

/* Box-Muller, cosine branch only (one value per two draws, so no hidden
 * cached state): u1 = (a+1)/2^32 in (0,1] so the log never sees 0,
 * u2 = b/2^32 in [0,1); radius sqrt(-2 ln u1) <= 6.66, in double with
 * ts_log/ts_cos, rounded once to float. */
float rng_normal(Rng *r)
{
    double u1 = ((double)rng_u32(r) + 1.0) * 0x1p-32;
    double u2 = (double)rng_u32(r) * 0x1p-32;
    double radius = sqrt(-2.0 * ts_log(u1));
    return (float)(radius * ts_cos(0x1.921fb54442d18p+2 * u2));   /* 2 pi */
}

/* Exactly one draw, whatever p holds. total and the running sum are both
 * sequential float sums from index 0, so the last cumsum equals total;
 * returns the first i with cumsum > u*total. If rounding (u*total rounding
 * up to total) leaves no such i, the last index with p > 0 is returned; if
 * no p is > 0, index 0. n <= 0 returns -1. */
int rng_categorical(Rng *r, const float *p, int n)
{
    float u = rng_uniform(r);
    if (n <= 0) return -1;
    float total = 0.0f;
    for (int i = 0; i < n; i++) total += p[i];
    float target = u * total;
    float cum = 0.0f;
    for (int i = 0; i < n; i++) {
        cum += p[i];
        if (cum > target) return i;
    }
    for (int i = n - 1; i >= 0; i--)
        if (p[i] > 0.0f) return i;
    return 0;
}

/* ========================================================================
 * SHA-256 (FIPS 180-4)
 * ====================================================================== */

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4 section 4.2.2); regenerated with mpmath. */
static const uint32_t SHA256_K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static inline uint32_t rotr32(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static uint32_t be_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* One 64-byte block of the compression function (section 6.2.2), portable C.
 * (A rolling 16-word schedule with renamed working variables measured the
 * same, ~250 MB/s on a 3.3 GHz Zen 2: the 64 rounds are one dependency chain
 * of about 13 cycles per byte here, so no portable single-stream C reaches
 * 1 GB/s; the hardware path below does.) */
static void sha256_block_portable(uint32_t h[8], const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = be_get_u32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t big_s1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + big_s1 + ch + SHA256_K[t] + w[t];
        uint32_t big_s0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = big_s0 + maj;
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

#if defined(__SHA__) && defined(__SSE4_1__)
#include <immintrin.h>
/* The same compression with the x86 SHA extensions (SHA-NI), compiled where
 * the target has them (-march=native on such a CPU). sha256rnds2 does two
 * rounds on the state held as ABEF / CDGH; sha256msg1/msg2 compute the
 * schedule four words at a time:
 *   W[i] = msg2(msg1(W[i-4], W[i-3]) + (words 4i-7..4i-4 = alignr(W[i-1], W[i-2])), W[i-1]).
 * tests/test_util.c compares it with the portable path byte for byte. */
static void sha256_block_shani(uint32_t hs[8], const uint8_t *block)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)(const void *)&hs[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(const void *)&hs[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1), efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8), cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    __m128i abef0 = abef, cdgh0 = cdgh, W[16], m;
    int i;
    for (i = 0; i < 16; i++) {
        if (i < 4) W[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(block + 16 * i)), bswap);
        else W[i] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(W[i - 4], W[i - 3]),
                                                       _mm_alignr_epi8(W[i - 1], W[i - 2], 4)), W[i - 1]);
        m = _mm_add_epi32(W[i], _mm_loadu_si128((const __m128i *)(const void *)&SHA256_K[4 * i]));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef0);
    cdgh = _mm_add_epi32(cdgh, cdgh0);
    {
        __m128i feba = _mm_shuffle_epi32(abef, 0x1B), dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        _mm_storeu_si128((__m128i *)(void *)&hs[0], _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128((__m128i *)(void *)&hs[4], _mm_alignr_epi8(dchg, feba, 8));
    }
}
static int sha256_hw_on = 1;
#else
static int sha256_hw_on = 0;
#endif

int sha256_hardware(int enable)
{
#if defined(__SHA__) && defined(__SSE4_1__)
    if (enable >= 0) sha256_hw_on = enable != 0;
#else
    (void)enable;
#endif
    return sha256_hw_on;
}

static void sha256_block(uint32_t h[8], const uint8_t *block)
{
#if defined(__SHA__) && defined(__SSE4_1__)
    if (sha256_hw_on) { sha256_block_shani(h, block); return; }
#endif
    sha256_block_portable(h, block);
}

void sha256_init(Sha256 *s)
{
    /* first 32 bits of the fractional parts of sqrt of the first 8 primes */
    static const uint32_t h0[8] = { 0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u };
    memcpy(s->h, h0, sizeof h0);
    s->nbytes = 0;
    s->nbuf = 0;
}

void sha256_update(Sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    s->nbytes += n;
    if (s->nbuf > 0) {                          /* top up a partial block first */
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take; p += take; n -= take;
        if (s->nbuf < 64) return;
        sha256_block(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(s->h, p);
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

/* Padding (section 5.1.1): 0x80, zeros to 56 mod 64, then the message length
 * in bits as a big-endian 64-bit word. Leaves s unusable until sha256_init. */
void sha256_final(Sha256 *s, uint8_t out[32])
{
    uint64_t nbits = s->nbytes * 8u;
    s->buf[s->nbuf++] = 0x80;
    if (s->nbuf > 56) {
        memset(s->buf + s->nbuf, 0, 64 - s->nbuf);
        sha256_block(s->h, s->buf);
        s->nbuf = 0;
    }
    memset(s->buf + s->nbuf, 0, 56 - s->nbuf);
    for (int i = 0; i < 8; i++) s->buf[56 + i] = (uint8_t)(nbits >> (56 - 8 * i));
    sha256_block(s->h, s->buf);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sha256(const void *data, size_t n, uint8_t out[32])
{
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, data, n);
    sha256_final(&s, out);
}

void sha256_hex(const uint8_t digest[32], char out[65])
{
    static const char hexdigits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexdigits[digest[i] >> 4];
        out[2 * i + 1] = hexdigits[digest[i] & 15];
    }
    out[64] = '\0';
}

/* ========================================================================
 * Stable sorting
 * ====================================================================== */

/* Runs this short are insertion-sorted: fewer comparisons than merging and
 * no buffer. Also the whole sort when n is small. */
#define SORT_RUN 16

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    while (size--) {
        unsigned char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

/* Stable in-place insertion sort by adjacent swaps: needs no memory at all,
 * which makes it the fallback when the merge buffer cannot be allocated. */
static void insertion_sort(unsigned char *base, size_t n, size_t size, sort_cmp_fn cmp, void *ctx)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp(base + (j - 1) * size, base + j * size, ctx) > 0; j--)
            swap_bytes(base + (j - 1) * size, base + j * size, size);
}

/* Merge sorted a[0..na) and b[0..nb) into dst. On ties a comes first: that
 * is what makes the sort stable, since a holds the earlier elements. */
static void merge_runs(unsigned char *dst, const unsigned char *a, size_t na,
                       const unsigned char *b, size_t nb, size_t size, sort_cmp_fn cmp, void *ctx)
{
    while (na > 0 && nb > 0) {
        if (cmp(b, a, ctx) < 0) { memcpy(dst, b, size); b += size; nb--; }
        else                    { memcpy(dst, a, size); a += size; na--; }
        dst += size;
    }
    memcpy(dst, a, na * size);
    memcpy(dst + na * size, b, nb * size);
}

/* Bottom-up merge sort: insertion-sort runs of SORT_RUN, then merge passes
 * of doubling width, ping-ponging between the array and one n-element
 * buffer. O(n log n) comparisons; stable. */
void stable_sort(void *base, size_t n, size_t size, sort_cmp_fn cmp, void *ctx)
{
    unsigned char *arr = (unsigned char *)base;
    if (n < 2 || size == 0) return;
    unsigned char *tmp = NULL;
    if (n > SORT_RUN && n <= SIZE_MAX / size) tmp = (unsigned char *)malloc(n * size);
    if (tmp == NULL) {                        /* small, or no memory: still correct */
        insertion_sort(arr, n, size, cmp, ctx);
        return;
    }
    for (size_t i = 0; i < n; i += SORT_RUN)
        insertion_sort(arr + i * size, n - i < SORT_RUN ? n - i : SORT_RUN, size, cmp, ctx);
    unsigned char *src = arr, *dst = tmp;
    for (size_t width = SORT_RUN; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = n - lo < width ? n : lo + width;
            size_t hi = n - mid < width ? n : mid + width;
            merge_runs(dst + lo * size, src + lo * size, mid - lo, src + mid * size, hi - mid, size, cmp, ctx);
        }
        unsigned char *t = src; src = dst; dst = t;
        if (width > n / 2) break;              /* next doubling would only copy; also no overflow */
    }
    if (src != arr) memcpy(arr, src, n * size);
    free(tmp);
}

typedef struct { const float *val; } ArgsortCtx;

/* Total order for argsort_desc: non-NaN before NaN, larger value first,
 * then smaller index. -0 and +0 compare equal (ties broken by index). */
static int cmp_value_desc(const void *pa, const void *pb, void *ctx)
{
    const float *val = ((const ArgsortCtx *)ctx)->val;
    int ia = *(const int *)pa, ib = *(const int *)pb;
    float a = val[ia], b = val[ib];
    int a_nan = a != a, b_nan = b != b;
    if (a_nan != b_nan) return a_nan - b_nan;
    if (!a_nan) {
        if (a > b) return -1;
        if (a < b) return 1;
    }
    return (ia > ib) - (ia < ib);
}

void argsort_desc(int *idx, const float *val, int n)
{
    if (n <= 0) return;
    for (int i = 0; i < n; i++) idx[i] = i;
    ArgsortCtx ctx = { val };
    stable_sort(idx, (size_t)n, sizeof(int), cmp_value_desc, &ctx);
}

/* ========================================================================
 * Optimizer numerics
 * ====================================================================== */

/* AdamW, decoupled weight decay, all in float, one element at a time:
 *   m = b1*m + (1-b1)*g
 *   v = b2*v + (1-b2)*(g*g)
 *   p = p - lr * ( (m/bc1) / (sqrtf(v/bc2) + eps) + wd*p )
 * with the products and sums evaluated in exactly this order and grouping
 * (the decay term uses p before the update). */
void adamw_update(float *params, const float *grads, float *m, float *v, size_t n,
                  float lr, float b1, float b2, float eps, float wd, float bc1, float bc2)
{
    float one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        float mi = b1 * m[i] + one_minus_b1 * g;
        float vi = b2 * v[i] + one_minus_b2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        float m_hat = mi / bc1;
        float v_hat = vi / bc2;
        float p = params[i];
        params[i] = p - lr * (m_hat / (sqrtf(v_hat) + eps) + wd * p);
    }
}

/* Sequential double sum of x^2 from index 0: each float square is exact in
 * double, only the additions round. */
double sum_squares(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double xi = (double)x[i];
        s += xi * xi;
    }
    return s;
}
/* ========================================================================
 * Ops: the transformer's forward and backward kernels.
 *
 * Every reduction below has exactly one order, written in the loop that
 * computes it and restated in the comment above each function; ports must
 * follow those orders to reproduce our bits. Speed work only ever tiles or
 * vectorises across independent outputs, never inside one output's sum.
 * Backward functions accumulate (+=) into each gradient they are given;
 * those with several gradients skip any passed as NULL.
 * ======================================================================== */
#include <math.h>   /* sqrtf only: correctly rounded by IEEE 754, so reproducible */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor.h"

/* ------------------------------------------------------------------------
 * Matmul engine. Every product in the model is the same shape of work:
 *   C[r][j] (+)= sum_k A[r][k] * B[k][j],
 * each output a plain sequential sum over k in increasing order, starting
 * from 0.0f (accumulate = 0: C is zeroed first, and 0.0f is what a sum
 * starts from anyway) or from the value already in C (accumulate = 1). A and
 * B are read through strides, so one engine serves out = inp W^T,
 * dinp += dout W, dweight += dout^T inp and the attention products, and the
 * range modes below let row r sum over only part of k (causal attention).
 *
 * How it is fast without changing any output's order:
 *  - a panel of B (MM_OB = 16 columns of j, or on AVX 32 or 48, by as many
 *    rows of k as fill MM_PANEL_FLOATS) is copied into a small contiguous
 *    static buffer, so the inner loop reads B with unit stride whatever the
 *    original layout;
 *  - a register tile of rows x panel columns keeps its partial sums in
 *    registers; the inner loop "acc[j] += a * b[j]" is independent across
 *    j. The plain C tile (4 rows x 16, local arrays with a fixed trip count)
 *    is what compilers vectorise on any target; on AVX machines without
 *    AVX-512 tiles written with AVX intrinsics replace it (5 x 16, 3 x 32,
 *    2 x 48): gcc spills the plain tile's 16-float arrays when a vector holds
 *    only 8, and the intrinsics do exactly the same float multiply, then add
 *    (no FMA);
 *  - the first k chunk of an output that is not accumulated into starts its
 *    sums from 0.0f in the registers (what memset-then-add would load), so
 *    outputs need no separate zeroing pass;
 *  - k is cut into chunks and a row's k-range into pieces (a one-row prefix,
 *    a shared middle for the tile's rows, a one-row suffix); between pieces the partial
 *    sum is stored to C and reloaded: the float stored is the float
 *    reloaded, so every output still sees the same sequence of roundings.
 * Tiles at the right and bottom edges run the same per-output arithmetic one
 * row at a time (a zero-padded panel column makes outputs that are dropped).
 * ---------------------------------------------------------------------- */
#if defined(__AVX__) && !defined(__AVX512F__)
#define MM_AVX 1
#include <immintrin.h>
#define MM_RB 5    /* rows of C per register tile of a 16-column panel: 10 of the 16 AVX registers hold sums */
#define MM_OB_MAX 48 /* widest panel: 2 rows x 48 columns = 12 registers of sums */
#define MM_PANEL_FLOATS 6144 /* 24 KiB: 384 k-steps of 16 columns, 192 of 32, 128 of 48; L1-resident */
#else
#define MM_AVX 0
#define MM_RB 4    /* rows of C per register tile */
#define MM_OB_MAX 16
#define MM_PANEL_FLOATS 4096 /* 16 KiB: 256 k-steps of 16 columns, L1-resident */
#endif
#define MM_OB 16   /* columns of C per panel (and per register tile): 4 SSE / 2 AVX / 1 AVX-512 vector;
                      the packed weights of matmul_pack always use this width */

enum {
    MM_ALL_K,       /* row r sums k = 0..K-1 */
    MM_CAUSAL_OUT,  /* as MM_ALL_K, but only outputs with j <= r are wanted: tiles wholly
                       above the diagonal are skipped, the rest of the upper part is junk */
    MM_K_UPTO_ROW,  /* row r sums k = 0..r     (attention: s <= t) */
    MM_K_FROM_ROW   /* row r sums k = r..K-1   (attention transposed: t >= s) */
};

static float mm_panel[MM_PANEL_FLOATS]; /* single-threaded program: one shared scratch panel */

/* A strided view of a matrix: element [i][k] is at p[i*row + k*col]. */
typedef struct { const float *p; size_t row, col; } MatView;

/* Panel width for the columns from j0 on, rem = J - j0 of them: MM_OB, or on AVX
 * the widest of 48, 32, 16 that rem fills (only a last panel of 16 can be
 * partial, zero-padded). Per k-step a tile issues one broadcast of A per row; a
 * wider tile needs fewer rows for the same registers, so fewer broadcasts per
 * product: 2 x 48 runs ~1.2x the rate of 5 x 16 here (Zen 2: a broadcast takes a
 * slot of the four the vector unit accepts per cycle). */
static int mm_panel_width(int rem)
{
    if (!MM_AVX) return MM_OB;
    return rem >= 48 ? 48 : rem >= 32 ? 32 : MM_OB;
}

/* rows of C per register tile of a panel pw columns wide */
static int mm_tile_rows(int pw) { return pw == 48 ? 2 : pw == 32 ? 3 : MM_RB; }

#if !MM_AVX
/* Rows 0..3 x MM_OB columns of c (row stride ldc) += A[0..3][k] * panel[k] for k in [ka, kb);
 * zero: the sums start from 0.0f instead of c. a points at A[0][0] of the chunk, panel at the
 * chunk's first row. Four named accumulator arrays rather than acc[4][16]: gcc keeps this
 * form in registers, the 2-D one it does not. */
static void mm_tile4(float *c, size_t ldc, const float *a, size_t a_row, size_t a_col,
                     const float *panel, int ka, int kb, int zero)
{
    float acc0[MM_OB], acc1[MM_OB], acc2[MM_OB], acc3[MM_OB];
    const float *a0 = a, *a1 = a + a_row, *a2 = a + 2 * a_row, *a3 = a + 3 * a_row;
    int j, k;
    for (j = 0; j < MM_OB; j++) {
        acc0[j] = zero ? 0.0f : c[j];
        acc1[j] = zero ? 0.0f : c[ldc + j];
        acc2[j] = zero ? 0.0f : c[2 * ldc + j];
        acc3[j] = zero ? 0.0f : c[3 * ldc + j];
    }
    for (k = ka; k < kb; k++) {
        const float *b = panel + (size_t)k * MM_OB;
        size_t ak = (size_t)k * a_col;
        float x0 = a0[ak], x1 = a1[ak], x2 = a2[ak], x3 = a3[ak];
        for (j = 0; j < MM_OB; j++) {
            acc0[j] += x0 * b[j];
            acc1[j] += x1 * b[j];
            acc2[j] += x2 * b[j];
            acc3[j] += x3 * b[j];
        }
    }
    for (j = 0; j < MM_OB; j++) {
        c[j] = acc0[j];
        c[ldc + j] = acc1[j];
        c[2 * ldc + j] = acc2[j];
        c[3 * ldc + j] = acc3[j];
    }
}

#endif

#if MM_AVX
/* The same arithmetic as mm_tile4 with AVX intrinsics, in three shapes: rows x
 * 8-float vectors of sums = 5 x 2 (16 columns), 3 x 4 (32) and 2 x 6 (48).
 * Every step is one float multiply then one add per output (_mm256_mul_ps,
 * _mm256_add_ps: the products and sums mm_tile4 rounds, in its order; no FMA).
 * Rows are given as pointers (c[r]: the row's outputs, a[r]: A[r][0] of the
 * chunk), so a tile at the bottom edge can fill its missing rows with a scratch
 * row instead of running row by row. s<r><i> is row r's vector i. */
#define MM_LD(r, i) __m256 s##r##i = zero ? _mm256_setzero_ps() : _mm256_loadu_ps(c[r] + 8 * (i));
#define MM_MA(r, i) s##r##i = _mm256_add_ps(s##r##i, _mm256_mul_ps(x##r, _mm256_loadu_ps(b + 8 * (i))));
#define MM_ST(r, i) _mm256_storeu_ps(c[r] + 8 * (i), s##r##i);
#define MM_X(r) __m256 x##r = _mm256_broadcast_ss(a[r] + ak);
#define MM_X16(r) { __m256 x = _mm256_broadcast_ss(a[r] + ak); \
        s##r##0 = _mm256_add_ps(s##r##0, _mm256_mul_ps(x, b0)); \
        s##r##1 = _mm256_add_ps(s##r##1, _mm256_mul_ps(x, b1)); }
#define MM_ROW2(M, r) M(r, 0) M(r, 1)
#define MM_ROW4(M, r) M(r, 0) M(r, 1) M(r, 2) M(r, 3)
#define MM_ROW6(M, r) M(r, 0) M(r, 1) M(r, 2) M(r, 3) M(r, 4) M(r, 5)
static void mm_tile5x16_avx(float *const *c, const float *const *a, size_t a_col, const float *panel, int ka, int kb,
                            int zero)
{
    MM_ROW2(MM_LD, 0) MM_ROW2(MM_LD, 1) MM_ROW2(MM_LD, 2) MM_ROW2(MM_LD, 3) MM_ROW2(MM_LD, 4)
    int k;
    for (k = ka; k < kb; k++) {   /* the panel row in two registers, one broadcast at a time */
        const float *b = panel + (size_t)k * 16;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        size_t ak = (size_t)k * a_col;
        MM_X16(0) MM_X16(1) MM_X16(2) MM_X16(3) MM_X16(4)
    }
    MM_ROW2(MM_ST, 0) MM_ROW2(MM_ST, 1) MM_ROW2(MM_ST, 2) MM_ROW2(MM_ST, 3) MM_ROW2(MM_ST, 4)
}
static void mm_tile3x32_avx(float *const *c, const float *const *a, size_t a_col, const float *panel, int ka, int kb,
                            int zero)
{
    MM_ROW4(MM_LD, 0) MM_ROW4(MM_LD, 1) MM_ROW4(MM_LD, 2)
    int k;
    for (k = ka; k < kb; k++) {
        const float *b = panel + (size_t)k * 32;
        size_t ak = (size_t)k * a_col;
        MM_X(0) MM_X(1) MM_X(2)
        MM_ROW4(MM_MA, 0) MM_ROW4(MM_MA, 1) MM_ROW4(MM_MA, 2)
    }
    MM_ROW4(MM_ST, 0) MM_ROW4(MM_ST, 1) MM_ROW4(MM_ST, 2)
}
static void mm_tile2x48_avx(float *const *c, const float *const *a, size_t a_col, const float *panel, int ka, int kb,
                            int zero)
{
    MM_ROW6(MM_LD, 0) MM_ROW6(MM_LD, 1)
    int k;
    for (k = ka; k < kb; k++) {
        const float *b = panel + (size_t)k * 48;
        size_t ak = (size_t)k * a_col;
        MM_X(0) MM_X(1)
        MM_ROW6(MM_MA, 0) MM_ROW6(MM_MA, 1)
    }
    MM_ROW6(MM_ST, 0) MM_ROW6(MM_ST, 1)
}

/* Register tiles for a panel pw columns wide down a strip of rows ct, ct + ldc, ... (A rows
 * at, at + a_row, ...): returns the rows done, all of them. A short last tile is filled up
 * with scratch rows that compute row 0's sums again and are dropped. One call per strip, not
 * per tile: at 2 rows a tile, the call and set-up of each tile cost a few percent of training. */
static int mm_strip(float *ct, size_t ldc, const float *at, size_t a_row, size_t a_col, int rows, int pw,
                    const float *panel, int ka, int kb, int zero)
{
    float pad[MM_OB_MAX] = {0.0f}, *c[MM_RB];
    const float *a[MM_RB];
    int rb = mm_tile_rows(pw), r0, r;
    for (r0 = 0; r0 < rows; r0 += rb) {
        for (r = 0; r < rb; r++) {
            c[r] = r0 + r < rows ? ct + (size_t)(r0 + r) * ldc : pad;
            a[r] = r0 + r < rows ? at + (size_t)(r0 + r) * a_row : at;
        }
        if (pw == 48) mm_tile2x48_avx(c, a, a_col, panel, ka, kb, zero);
        else if (pw == 32) mm_tile3x32_avx(c, a, a_col, panel, ka, kb, zero);
        else mm_tile5x16_avx(c, a, a_col, panel, ka, kb, zero);
    }
    return rows;
}
#else
/* Register tiles of MM_RB rows down a strip (see above): returns the rows done, the whole
 * tiles; the caller runs the rest row by row. */
static int mm_strip(float *ct, size_t ldc, const float *at, size_t a_row, size_t a_col, int rows, int pw,
                    const float *panel, int ka, int kb, int zero)
{
    int r0;
    (void)pw;  /* always MM_OB */
    for (r0 = 0; r0 + MM_RB <= rows; r0 += MM_RB)
        mm_tile4(ct + (size_t)r0 * ldc, ldc, at + (size_t)r0 * a_row, a_row, a_col, panel, ka, kb, zero);
    return r0;
}
#endif

/* One row, w (a constant where it is inlined) columns: the same arithmetic as one row of
 * the tiles. */
static inline void mm_row_w(float *c, const float *a, size_t a_col, const float *panel, int ka, int kb, int w)
{
    float acc[MM_OB_MAX];
    int j, k;
    for (j = 0; j < w; j++) acc[j] = c[j];
    for (k = ka; k < kb; k++) {
        const float *b = panel + (size_t)k * w;
        float x = a[(size_t)k * a_col];
        for (j = 0; j < w; j++) acc[j] += x * b[j];
    }
    for (j = 0; j < w; j++) c[j] = acc[j];
}
static void mm_tile1(float *c, const float *a, size_t a_col, const float *panel, int pw, int ka, int kb)
{
    if (MM_AVX && pw == 48) mm_row_w(c, a, a_col, panel, ka, kb, 48);
    else if (MM_AVX && pw == 32) mm_row_w(c, a, a_col, panel, ka, kb, 32);
    else mm_row_w(c, a, a_col, panel, ka, kb, MM_OB);
}

/* the k-range row r sums over, intersected with the chunk [k0, k1) */
static int mm_klo(int mode, int r, int k0) { return mode == MM_K_FROM_ROW && r > k0 ? r : k0; }
static int mm_khi(int mode, int r, int k1) { return mode == MM_K_UPTO_ROW && r + 1 < k1 ? r + 1 : k1; }

/* One tile of rows r0..r0+rows-1, columns j0..j0+cols-1, chunk [k0, k1) packed in a panel
 * pw columns wide. zero: this chunk starts every row's sums (from 0.0f; never with
 * MM_K_FROM_ROW). */
static void mm_tile(float *c, size_t ldc, MatView a, const float *panel, int pw, int mode, int r0, int rows, int j0,
                    int cols, int k0, int k1, int zero)
{
    float *ct = c + (size_t)r0 * ldc + j0;
    const float *at = a.p + (size_t)r0 * a.row + (size_t)k0 * a.col;
    int lo_max = mm_klo(mode, r0 + rows - 1, k0), hi_min = mm_khi(mode, r0, k1), r, j;
    if ((rows == mm_tile_rows(pw) || MM_AVX) && cols == pw && lo_max < hi_min) {
        /* each row: its own prefix [lo, lo_max), the shared middle, its own suffix [hi_min, hi) */
        for (r = 0; r < rows; r++) {
            int lo = mm_klo(mode, r0 + r, k0);
            if (lo < lo_max)
                mm_tile1(ct + (size_t)r * ldc, at + (size_t)r * a.row, a.col, panel, pw, lo - k0, lo_max - k0);
        }
        mm_strip(ct, ldc, at, a.row, a.col, rows, pw, panel, lo_max - k0, hi_min - k0, zero);
        for (r = 0; r < rows; r++) {
            int hi = mm_khi(mode, r0 + r, k1);
            if (hi_min < hi)
                mm_tile1(ct + (size_t)r * ldc, at + (size_t)r * a.row, a.col, panel, pw, hi_min - k0, hi - k0);
        }
        return;
    }
    for (r = 0; r < rows; r++) {  /* edges: one row at a time through a zero-padded copy */
        float row[MM_OB_MAX];
        int lo = mm_klo(mode, r0 + r, k0), hi = mm_khi(mode, r0 + r, k1);
        if (lo >= hi) continue;
        for (j = 0; j < pw; j++) row[j] = j < cols && !zero ? ct[(size_t)r * ldc + j] : 0.0f;
        mm_tile1(row, at + (size_t)r * a.row, a.col, panel, pw, lo - k0, hi - k0);
        for (j = 0; j < cols; j++) ct[(size_t)r * ldc + j] = row[j];
    }
}

/* Copy B[k0..k1)[j0..j0+cols) into a panel pw columns wide, row by row, zero-padded beyond
 * cols (a memcpy where B's rows are contiguous). */
static void mm_pack(float *panel, MatView b, int pw, int cols, int j0, int k0, int k1)
{
    int j, k;
    for (k = k0; k < k1; k++, panel += pw) {
        const float *src = b.p + (size_t)j0 * b.col + (size_t)k * b.row;
        if (b.col == 1) memcpy(panel, src, (size_t)cols * sizeof(float));
        else for (j = 0; j < cols; j++) panel[j] = src[(size_t)j * b.col];
        for (j = cols; j < pw; j++) panel[j] = 0.0f;
    }
}

/* C (R x J, row stride ldc) (+)= A (R x K) @ B (K x J) in the given range mode.
 * B is read through its view b and packed panel by panel into mm_panel, or,
 * when packed is not NULL, its panels are already in packed (matmul_pack's
 * layout: panel j0/MM_OB holds K rows of MM_OB columns, zero-padded).
 * Panel widths and k-chunk lengths change only where a partial sum is stored
 * and reloaded, never an output's order. */
static void mm_engine(float *c, size_t ldc, MatView a, MatView b, const float *packed, int R, int K, int J,
                      int accumulate, int mode)
{
    int r0, k0, j0, r, pw, zero_first = !accumulate && mode != MM_K_FROM_ROW && K > 0;
    if (!accumulate && !zero_first)  /* otherwise the first chunk's tiles start from 0.0f */
        for (r = 0; r < R; r++) memset(c + (size_t)r * ldc, 0, (size_t)(J > 0 ? J : 0) * sizeof(float));
    for (j0 = 0; j0 < J; j0 += pw) {
        int cols, kc, rb;
        pw = packed ? MM_OB : mm_panel_width(J - j0);
        cols = J - j0 < pw ? J - j0 : pw;
        kc = MM_PANEL_FLOATS / pw;
        rb = mm_tile_rows(pw);
        for (k0 = 0; k0 < K; k0 += kc) {
            int k1 = K - k0 < kc ? K : k0 + kc;
            const float *panel = mm_panel;
            if (packed) panel = packed + ((size_t)(j0 / MM_OB) * K + (size_t)k0) * MM_OB;
            else mm_pack(mm_panel, b, pw, cols, j0, k0, k1);
            /* causal output: row tiles that end above column j0 hold no wanted output */
            r0 = mode == MM_CAUSAL_OUT ? j0 - j0 % rb : 0;
            if ((mode == MM_ALL_K || mode == MM_CAUSAL_OUT) && cols == pw && r0 < R)  /* one range for all rows */
                r0 += mm_strip(c + (size_t)r0 * ldc + j0, ldc, a.p + (size_t)r0 * a.row + (size_t)k0 * a.col, a.row,
                               a.col, R - r0, pw, panel, 0, k1 - k0, zero_first && k0 == 0);
            for (; r0 < R; r0 += rb)
                mm_tile(c, ldc, a, panel, pw, mode, r0, R - r0 < rb ? R - r0 : rb, j0, cols, k0, k1,
                        zero_first && k0 == 0);
        }
    }
}

/* out[n][o] = sum_{c=0..C-1} inp[n][c] * weight[o][c], sequential in c from 0.0f. */
void matmul_forward(float *out, const float *inp, const float *weight, int N, int C, int OC)
{
    MatView a, b;
    a.p = inp; a.row = (size_t)C; a.col = 1;        /* A[n][c] = inp[n][c] */
    b.p = weight; b.row = 1; b.col = (size_t)C;     /* B[c][o] = weight[o][c] */
    mm_engine(out, (size_t)OC, a, b, NULL, N, C, OC, 0, MM_ALL_K);
}

/* dinp[n][c]    += dout[n][o] * weight[o][c] for o = 0..OC-1 in order;
 * dweight[o][c] += dout[n][o] * inp[n][c]    for n = 0..N-1  in order.
 * Each term is added to the gradient as it comes (the gradient's previous
 * value is the start of the sum), never summed separately first. */
static void matmul_bwd(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                       int N, int C, int OC, int accumulate)
{
    MatView a, b;
    if (dinp) {
        a.p = dout; a.row = (size_t)OC; a.col = 1;  /* A[n][o] = dout[n][o] */
        b.p = weight; b.row = (size_t)C; b.col = 1; /* B[o][c] = weight[o][c] */
        mm_engine(dinp, (size_t)C, a, b, NULL, N, OC, C, accumulate, MM_ALL_K);
    }
    if (dweight) {
        a.p = dout; a.row = 1; a.col = (size_t)OC;  /* A[o][n] = dout[n][o] */
        b.p = inp; b.row = (size_t)C; b.col = 1;    /* B[n][c] = inp[n][c] */
        mm_engine(dweight, (size_t)C, a, b, NULL, OC, N, C, 1, MM_ALL_K);
    }
}

void matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                     int N, int C, int OC)
{
    matmul_bwd(dinp, dweight, dout, inp, weight, N, C, OC, 1);
}

/* dinp's first k-chunk starts its sums from 0.0f in the registers: the float a zeroed dinp
 * holds, then the same additions */
void matmul_backward_set(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         int N, int C, int OC)
{
    matmul_bwd(dinp, dweight, dout, inp, weight, N, C, OC, 0);
}

/* ------------------------------------------------------------------------
 * Matmul on a packed weight, for decoding. A decode step multiplies one row
 * (or a few) by every weight matrix; packing the weight's panels on each
 * call, as the engine does for training, then costs as much as the product.
 * The decoder packs each matrix once per generate() into the engine's panel
 * layout and keeps it; the per-output arithmetic is unchanged:
 * out[n][o] = sum_{c=0..C-1} inp[n][c] * w[o][c] sequential in c from 0.0f.
 * ---------------------------------------------------------------------- */

/* Panel p holds columns o = p*MM_OB .. p*MM_OB+15 of W^T for every c:
 * packed[(p*C + c)*MM_OB + j] = w[p*MM_OB + j][c], 0.0f beyond OC. */
size_t matmul_packed_size(int C, int OC)
{
    return (size_t)((OC + MM_OB - 1) / MM_OB) * MM_OB * (size_t)C;
}

void matmul_pack(float *packed, const float *weight, int C, int OC)
{
    int p, c, j, np = (OC + MM_OB - 1) / MM_OB;
    for (p = 0; p < np; p++) {   /* written in order; read as 16 row streams */
        const float *w = weight + (size_t)p * MM_OB * C;
        int cols = OC - p * MM_OB < MM_OB ? OC - p * MM_OB : MM_OB;
        for (c = 0; c < C; c++, packed += MM_OB)
            for (j = 0; j < MM_OB; j++) packed[j] = j < cols ? w[(size_t)j * C + c] : 0.0f;
    }
}

#if !MM_AVX
/* One row against 8 panels (128 outputs): the whole sum over c stays in
 * eight named 16-wide accumulators (registers), each step one x[c] times
 * eight panel rows. Every output is its own sequential sum from 0.0f. */
static void mm_row8(float *out, const float *x, const float *panels, int C)
{
    float acc0[MM_OB], acc1[MM_OB], acc2[MM_OB], acc3[MM_OB], acc4[MM_OB], acc5[MM_OB], acc6[MM_OB], acc7[MM_OB];
    size_t ps = (size_t)C * MM_OB;
    const float *p0 = panels, *p1 = p0 + ps, *p2 = p1 + ps, *p3 = p2 + ps;
    const float *p4 = p3 + ps, *p5 = p4 + ps, *p6 = p5 + ps, *p7 = p6 + ps;
    int c, j;
    for (j = 0; j < MM_OB; j++) {
        acc0[j] = 0.0f; acc1[j] = 0.0f; acc2[j] = 0.0f; acc3[j] = 0.0f;
        acc4[j] = 0.0f; acc5[j] = 0.0f; acc6[j] = 0.0f; acc7[j] = 0.0f;
    }
    for (c = 0; c < C; c++) {
        size_t at = (size_t)c * MM_OB;
        float xc = x[c];
        for (j = 0; j < MM_OB; j++) {
            acc0[j] += xc * p0[at + j]; acc1[j] += xc * p1[at + j];
            acc2[j] += xc * p2[at + j]; acc3[j] += xc * p3[at + j];
            acc4[j] += xc * p4[at + j]; acc5[j] += xc * p5[at + j];
            acc6[j] += xc * p6[at + j]; acc7[j] += xc * p7[at + j];
        }
    }
    for (j = 0; j < MM_OB; j++) {
        out[j] = acc0[j]; out[MM_OB + j] = acc1[j]; out[2 * MM_OB + j] = acc2[j]; out[3 * MM_OB + j] = acc3[j];
        out[4 * MM_OB + j] = acc4[j]; out[5 * MM_OB + j] = acc5[j]; out[6 * MM_OB + j] = acc6[j];
        out[7 * MM_OB + j] = acc7[j];
    }
}

#endif

#if MM_AVX
/* mm_row8's arithmetic for 4 panels (64 outputs) with AVX intrinsics: 8 registers of sums,
 * each step one x[c] broadcast, multiplied then added (no FMA) to 8 panel vectors. With
 * 8-float vectors mm_row8's 128 sums do not fit the 16 registers and live on the stack. */
#define MM_ROW_STEP(i) do { \
        acc##i##l = _mm256_add_ps(acc##i##l, _mm256_mul_ps(xc, _mm256_loadu_ps(p##i + at))); \
        acc##i##h = _mm256_add_ps(acc##i##h, _mm256_mul_ps(xc, _mm256_loadu_ps(p##i + at + 8))); \
    } while (0)
static void mm_row4_avx(float *out, const float *x, const float *panels, int C)
{
    size_t ps = (size_t)C * MM_OB;
    const float *p0 = panels, *p1 = p0 + ps, *p2 = p1 + ps, *p3 = p2 + ps;
    __m256 acc0l = _mm256_setzero_ps(), acc0h = acc0l, acc1l = acc0l, acc1h = acc0l;
    __m256 acc2l = acc0l, acc2h = acc0l, acc3l = acc0l, acc3h = acc0l;
    int c;
    for (c = 0; c < C; c++) {
        size_t at = (size_t)c * MM_OB;
        __m256 xc = _mm256_broadcast_ss(x + c);
        MM_ROW_STEP(0); MM_ROW_STEP(1); MM_ROW_STEP(2); MM_ROW_STEP(3);
    }
    _mm256_storeu_ps(out, acc0l); _mm256_storeu_ps(out + 8, acc0h);
    _mm256_storeu_ps(out + 16, acc1l); _mm256_storeu_ps(out + 24, acc1h);
    _mm256_storeu_ps(out + 32, acc2l); _mm256_storeu_ps(out + 40, acc2h);
    _mm256_storeu_ps(out + 48, acc3l); _mm256_storeu_ps(out + 56, acc3h);
}
#define MM_ROW_PANELS 4
#define mm_row_fast mm_row4_avx
#else
#define MM_ROW_PANELS 8
#define mm_row_fast mm_row8
#endif

/* out (N,OC) = inp (N,C) @ W^T from matmul_pack's copy of W. One row: eight
 * panels at a time in registers, the rest (and a partial last panel) one
 * panel at a time through a padded row; several rows: the engine's tiles. */
void matmul_forward_packed(float *out, const float *inp, const float *packed, int N, int C, int OC)
{
    MatView a, b;
    if (N == 1) {
        int np = (OC + MM_OB - 1) / MM_OB, p = 0, j;
        for (; p + MM_ROW_PANELS <= np && (p + MM_ROW_PANELS) * MM_OB <= OC; p += MM_ROW_PANELS)
            mm_row_fast(out + (size_t)p * MM_OB, inp, packed + (size_t)p * C * MM_OB, C);
        for (; p < np; p++) {
            float row[MM_OB];
            int cols = OC - p * MM_OB < MM_OB ? OC - p * MM_OB : MM_OB;
            for (j = 0; j < MM_OB; j++) row[j] = 0.0f;
            mm_tile1(row, inp, 1, packed + (size_t)p * C * MM_OB, MM_OB, 0, C);
            for (j = 0; j < cols; j++) out[(size_t)p * MM_OB + j] = row[j];
        }
        return;
    }
    a.p = inp; a.row = (size_t)C; a.col = 1;
    b.p = NULL; b.row = 0; b.col = 0;                /* unused: the panels are in packed */
    mm_engine(out, (size_t)OC, a, b, packed, N, C, OC, 0, MM_ALL_K);
}

/* ------------------------------------------------------------------------
 * Embedding. Token ids are validated by the caller (tokenizer / data
 * loader): an id outside the table is a bug upstream, not handled here.
 * ---------------------------------------------------------------------- */
void embedding_forward(float *out, const int *tokens, const float *wte, int N, int C)
{
    int n;
    for (n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
}

/* Rows are added n = 0..N-1 in order, so a token seen twice gets its two
 * gradients in position order. */
void embedding_backward(float *dwte, const float *dout, const int *tokens, int N, int C)
{
    int n, c;
    for (n = 0; n < N; n++) {
        float *d = dwte + (size_t)tokens[n] * C;
        const float *g = dout + (size_t)n * C;
        for (c = 0; c < C; c++) d[c] += g[c];
    }
}

/* n <= 4 rows of a row-major matrix x (row stride `stride`), times y elementwise when y is
 * not NULL, and times a column vector w first when w is not NULL:
 *   out[r] = sum_{s < len + r*grow} x[r][s] (* w[s]) (* y[r][s]), sequential in s from 0.0f
 * (grow 1: the rows of a causal triangle; 0: rows of one length). Four rows' sums run side by
 * side, so four chains of dependent additions overlap, each in its own order. */
static void row_sums4(float *out, const float *x, const float *w, const float *y, size_t stride, int len, int grow,
                      int n)
{
    const float *x0 = x, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    const float *y0 = y, *y1 = y ? y0 + stride : NULL, *y2 = y ? y1 + stride : NULL, *y3 = y ? y2 + stride : NULL;
    int r, s;
    if (n == 4) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        if (w && y) {
            for (s = 0; s < len; s++) {
                s0 += (x0[s] * w[s]) * y0[s]; s1 += (x1[s] * w[s]) * y1[s];
                s2 += (x2[s] * w[s]) * y2[s]; s3 += (x3[s] * w[s]) * y3[s];
            }
        } else if (y) {
            for (s = 0; s < len; s++) {
                s0 += x0[s] * y0[s]; s1 += x1[s] * y1[s]; s2 += x2[s] * y2[s]; s3 += x3[s] * y3[s];
            }
        } else {
            for (s = 0; s < len; s++) { s0 += x0[s]; s1 += x1[s]; s2 += x2[s]; s3 += x3[s]; }
        }
        if (grow) {   /* the rows' extra terms, each in order (no column vector with grow) */
            s1 += y ? x1[len] * y1[len] : x1[len];
            s2 += y ? x2[len] * y2[len] : x2[len];
            s3 += y ? x3[len] * y3[len] : x3[len];
            s2 += y ? x2[len + 1] * y2[len + 1] : x2[len + 1];
            s3 += y ? x3[len + 1] * y3[len + 1] : x3[len + 1];
            s3 += y ? x3[len + 2] * y3[len + 2] : x3[len + 2];
        }
        out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
        return;
    }
    for (r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * stride, *yr = y ? y + (size_t)r * stride : NULL;
        float sum = 0.0f;
        for (s = 0; s < len + r * grow; s++) {
            float t = w && s < len ? xr[s] * w[s] : xr[s];
            sum += yr ? t * yr[s] : t;
        }
        out[r] = sum;
    }
}

/* ------------------------------------------------------------------------
 * RMSNorm (Zhang & Sennrich 2019), per row of C values:
 *   ss = sum_c x[c]*x[c] (sequential in c, from 0.0f)
 *   rstd = 1.0f / sqrtf(ss / C + eps),  out[c] = (x[c] * rstd) * w[c]
 * ---------------------------------------------------------------------- */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C, float eps)
{
    int n0, n, c;
    float ss[4];
    for (n0 = 0; n0 < N; n0 += 4) {   /* four rows' sums of squares side by side */
        int rows = N - n0 < 4 ? N - n0 : 4;
        row_sums4(ss, inp + (size_t)n0 * C, NULL, inp + (size_t)n0 * C, (size_t)C, C, 0, rows);
        for (n = n0; n < n0 + rows; n++) {
            const float *x = inp + (size_t)n * C;
            float *o = out + (size_t)n * C, r = 1.0f / sqrtf(ss[n - n0] / (float)C + eps);
            for (c = 0; c < C; c++) o[c] = (x[c] * r) * weight[c];
            if (rstd) rstd[n] = r;
        }
    }
}

/* With g[c] = dout[c]*w[c] and r = rstd, d out[i] / d x[c] gives
 *   dx[i] = r * g[i] - x[i] * r^3 * (sum_c g[c]*x[c]) / C.
 * Per row: dot = sum_c (dout[c]*w[c])*x[c] sequential in c from 0.0f;
 *   k = ((dot * r) * r) / C;
 *   dinp[i]    += (dout[i]*w[i] - x[i]*k) * r;
 *   dweight[i] += dout[i] * (x[i]*r)        (rows n = 0..N-1 in order). */
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                      const float *rstd, int N, int C)
{
    int n0, n, c;
    float dot[4];
    for (n0 = 0; n0 < N; n0 += 4) {   /* four rows' dots side by side, then each row in order */
        int rows = N - n0 < 4 ? N - n0 : 4;
        if (dinp) row_sums4(dot, dout + (size_t)n0 * C, weight, inp + (size_t)n0 * C, (size_t)C, C, 0, rows);
        for (n = n0; n < n0 + rows; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float r = rstd[n];
            if (dinp) {
                float *dx = dinp + (size_t)n * C, k = ((dot[n - n0] * r) * r) / (float)C;
                for (c = 0; c < C; c++) dx[c] += (g[c] * weight[c] - x[c] * k) * r;
            }
            if (dweight)
                for (c = 0; c < C; c++) dweight[c] += g[c] * (x[c] * r);
        }
    }
}

/* ------------------------------------------------------------------------
 * Rotary position embedding (Su et al. 2021) on interleaved pairs.
 * Tables are computed in double with the project's own exp/log/sin/cos:
 *   freq_i = exp(-(2i/hd) * ln theta), angle = pos * freq_i (double),
 * then each cos/sin is rounded once to float. Table index [pos][i].
 * ---------------------------------------------------------------------- */
void rope_tables(float *cos_tab, float *sin_tab, int max_pos, int head_dim, float theta)
{
    int half = head_dim / 2, p, i;
    double ln_theta = ts_log((double)theta);
    for (i = 0; i < half; i++) {
        double freq = ts_exp(-((double)(2 * i) / (double)head_dim) * ln_theta);
        for (p = 0; p < max_pos; p++) {
            double angle = (double)p * freq;
            cos_tab[(size_t)p * half + i] = (float)ts_cos(angle);
            sin_tab[(size_t)p * half + i] = (float)ts_sin(angle);
        }
    }
}

/* out[2i] = x0*cos - x1*sin, out[2i+1] = x0*sin + x1*cos, for every head of
 * row n at position pos[n]. Both inputs are read before either output is
 * written, so out may equal inp. */
void rope_forward(float *out, const float *inp, const int *pos, const float *cos_tab, const float *sin_tab,
                  int N, int H, int head_dim)
{
    int half = head_dim / 2, n, h, i;
    for (n = 0; n < N; n++) {
        const float *cs = cos_tab + (size_t)pos[n] * half, *sn = sin_tab + (size_t)pos[n] * half;
        for (h = 0; h < H; h++) {
            size_t base = ((size_t)n * H + h) * head_dim;
            for (i = 0; i < half; i++) {
                float x0 = inp[base + 2 * i], x1 = inp[base + 2 * i + 1];
                out[base + 2 * i] = x0 * cs[i] - x1 * sn[i];
                out[base + 2 * i + 1] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

/* The transpose of a rotation is its inverse:
 *   dinp[2i] += d0*cos + d1*sin,  dinp[2i+1] += d1*cos - d0*sin.
 * dinp must not alias dout (it accumulates). */
void rope_backward(float *dinp, const float *dout, const int *pos, const float *cos_tab, const float *sin_tab,
                   int N, int H, int head_dim)
{
    int half = head_dim / 2, n, h, i;
    for (n = 0; n < N; n++) {
        const float *cs = cos_tab + (size_t)pos[n] * half, *sn = sin_tab + (size_t)pos[n] * half;
        for (h = 0; h < H; h++) {
            size_t base = ((size_t)n * H + h) * head_dim;
            for (i = 0; i < half; i++) {
                float d0 = dout[base + 2 * i], d1 = dout[base + 2 * i + 1];
                dinp[base + 2 * i] += d0 * cs[i] + d1 * sn[i];
                dinp[base + 2 * i + 1] += d1 * cs[i] - d0 * sn[i];
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * Causal self-attention with grouped-query heads (GQA: head h reads kv head
 * h / (H/KVH); KVH == H is ordinary multi-head attention; H % KVH == 0).
 * Each (batch b, head h) is a short chain of matmuls on the engine above,
 * taken in the order b = 0..B-1, then h = 0..H-1. With Q, K, V, O the
 * (T, hd) slices of that head (strided views, nothing is copied):
 *   S[t][s] = sum_i Q[t][i]*K[s][i]    (sequential in i from 0.0f), s <= t;
 *   per row t: S[t][s] *= scale (scale = 1.0f / sqrtf(hd)); m = max_s S[t][s];
 *     e[s] = ts_expf(S[t][s] - m); sum = sum_s e[s] (sequential in s from 0.0f);
 *     att[t][s] = e[s] * (1.0f / sum) for s <= t, and 0.0f for s > t: the saved
 *     (B,H,T,T) tensor is fully defined;
 *   O[t][i] = sum_{s=0..t} att[t][s]*V[s][i]  (sequential in s from 0.0f).
 * ---------------------------------------------------------------------- */

/* Views of one head's (T, hd) slice of a (B, T, heads, hd) tensor. */
static MatView head_rows(const float *x, int b, int head, int T, int heads, int hd)
{   /* element [t][i] */
    MatView m;
    m.p = x + ((size_t)b * T * heads + (size_t)head) * hd; m.row = (size_t)heads * hd; m.col = 1;
    return m;
}
static MatView head_cols(const float *x, int b, int head, int T, int heads, int hd)
{   /* the transpose: element [i][t] */
    MatView m = head_rows(x, b, head, T, heads, hd);
    m.col = m.row; m.row = 1;
    return m;
}

/* The largest of x[0..n), NaNs skipped unless x[0] is one (as a running
 * "if (x[s] > m) m = x[s]" gives). Max rounds nothing, so 16 running lanes
 * combined at the end give the same value; only the sign of a zero maximum
 * may differ, and x - m and exp(x - m) do not see it. */
static float max_of(const float *x, int n)
{
    float lane[16], m = x[0];
    int s, j, full = n / 16 * 16;
    if (full) {
        for (j = 0; j < 16; j++) lane[j] = x[j];
        for (s = 16; s < full; s += 16)
            for (j = 0; j < 16; j++) lane[j] = x[s + j] > lane[j] ? x[s + j] : lane[j];
        for (j = 0; j < 16; j++) if (lane[j] > m) m = lane[j];
    }
    for (s = full; s < n; s++) if (x[s] > m) m = x[s];
    return m;
}

/* One head's softmax probabilities into a (T, T): scores by the engine, then per row scale,
 * max, the exps (apart from their in-order sum, so they vectorise), sum (four rows side by
 * side), normalise; zeros above the diagonal. The forward pass and the recomputing backward
 * both call this. */
static void attention_head_probs(float *a, const float *q, const float *k, int b, int h, int T, int H, int KVH, int hd)
{
    int group = H / KVH, t0, t, s, n;
    float scale = 1.0f / sqrtf((float)hd), sum[4];
    mm_engine(a, (size_t)T, head_rows(q, b, h, T, H, hd), head_cols(k, b, h / group, T, KVH, hd), NULL,
              T, hd, T, 0, MM_CAUSAL_OUT);
    for (t0 = 0; t0 < T; t0 += 4) {
        n = T - t0 < 4 ? T - t0 : 4;
        for (t = t0; t < t0 + n; t++) {
            float *row = a + (size_t)t * T, m;
            for (s = 0; s <= t; s++) row[s] = row[s] * scale;
            m = max_of(row, t + 1);
            for (s = 0; s <= t; s++) row[s] = ts_expf(row[s] - m);  /* apart from the sum: vectorises */
        }
        row_sums4(sum, a + (size_t)t0 * T, NULL, NULL, (size_t)T, t0 + 1, 1, n);
        for (t = t0; t < t0 + n; t++) {
            float *row = a + (size_t)t * T, inv = 1.0f / sum[t - t0];
            for (s = 0; s <= t; s++) row[s] = row[s] * inv;
            for (s = t + 1; s < T; s++) row[s] = 0.0f;
        }
    }
}

/* att_step: T*T to keep every head's probabilities in att, 0 to pass them through one (T, T) scratch */
static void attention_fwd(float *out, float *att, size_t att_step, const float *q, const float *k, const float *v,
                          int B, int T, int H, int KVH, int hd)
{
    int group = H / KVH, b, h;
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            float *a = att + ((size_t)b * H + h) * att_step;
            MatView a_rows;
            a_rows.p = a; a_rows.row = (size_t)T; a_rows.col = 1;
            attention_head_probs(a, q, k, b, h, T, H, KVH, hd);
            mm_engine(out + ((size_t)b * T * H + (size_t)h) * hd, (size_t)H * hd, a_rows,
                      head_rows(v, b, h / group, T, KVH, hd), NULL, T, T, hd, 0, MM_K_UPTO_ROW);
        }
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int H, int KVH, int hd)
{
    attention_fwd(out, att, (size_t)T * T, q, k, v, B, T, H, KVH, hd);
}

void attention_forward_lean(float *out, float *scratch, const float *q, const float *k, const float *v,
                            int B, int T, int H, int KVH, int hd)
{
    attention_fwd(out, scratch, 0, q, k, v, B, T, H, KVH, hd);
}

/* Backward, per (b, h) in the same order as forward, with G = dout slice:
 *   D[t][s]  = sum_i G[t][i]*V[s][i]          (sequential in i from 0.0f), s <= t;
 *   per row t: dot = sum_{s=0..t} att[t][s]*D[t][s]  (sequential in s from 0.0f);
 *     D[t][s] = (att[t][s] * (D[t][s] - dot)) * scale     (softmax, then score scale);
 *   dq[t][i] += D[t][s]*K[s][i]   for s = 0..t in order;
 *   dk[s][i] += D[t][s]*Q[t][i]   for t = s..T-1 in order;
 *   dv[s][i] += att[t][s]*G[t][i] for t = s..T-1 in order.
 * A kv head shared by a GQA group so receives its terms head by head
 * (h increasing), each head's terms in t order. The (T, T) matrix D lives in
 * datt_buf (T*T floats, the caller's scratch). att NULL: each head's
 * probabilities are recomputed by attention_head_probs into probs_buf
 * (T*T floats), the same floats the forward pass made. */
static void attention_bwd(float *dq, float *dk, float *dv, float *datt_buf, float *probs_buf, const float *dout,
                          const float *att, const float *q, const float *k, const float *v,
                          int B, int T, int H, int KVH, int hd)
{
    int group = H / KVH, b, h, t, t0, s;
    float scale = 1.0f / sqrtf((float)hd), *d = datt_buf, dot[4];
    MatView d_rows, d_cols, a_cols;
    d_rows.p = d; d_rows.row = (size_t)T; d_rows.col = 1;
    d_cols.p = d; d_cols.row = 1; d_cols.col = (size_t)T;
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            const float *a;
            int kvh = h / group;
            size_t q_off = ((size_t)b * T * H + (size_t)h) * hd, kv_off = ((size_t)b * T * KVH + (size_t)kvh) * hd;
            if (att) {
                a = att + ((size_t)b * H + h) * T * T;
            } else {
                attention_head_probs(probs_buf, q, k, b, h, T, H, KVH, hd);
                a = probs_buf;
            }
            mm_engine(d, (size_t)T, head_rows(dout, b, h, T, H, hd), head_cols(v, b, kvh, T, KVH, hd), NULL,
                      T, hd, T, 0, MM_CAUSAL_OUT);
            for (t0 = 0; t0 < T; t0 += 4) {   /* four rows' dots side by side */
                int n = T - t0 < 4 ? T - t0 : 4;
                row_sums4(dot, a + (size_t)t0 * T, NULL, d + (size_t)t0 * T, (size_t)T, t0 + 1, 1, n);
                for (t = t0; t < t0 + n; t++) {
                    const float *arow = a + (size_t)t * T;
                    float *drow = d + (size_t)t * T;
                    for (s = 0; s <= t; s++) drow[s] = (arow[s] * (drow[s] - dot[t - t0])) * scale;
                }
            }
            if (dq)
                mm_engine(dq + q_off, (size_t)H * hd, d_rows, head_rows(k, b, kvh, T, KVH, hd), NULL, T, T, hd, 1, MM_K_UPTO_ROW);
            if (dk)
                mm_engine(dk + kv_off, (size_t)KVH * hd, d_cols, head_rows(q, b, h, T, H, hd), NULL, T, T, hd, 1, MM_K_FROM_ROW);
            if (dv) {
                a_cols.p = a; a_cols.row = 1; a_cols.col = (size_t)T;
                mm_engine(dv + kv_off, (size_t)KVH * hd, a_cols, head_rows(dout, b, h, T, H, hd), NULL, T, T, hd, 1, MM_K_FROM_ROW);
            }
        }
}

void attention_backward(float *dq, float *dk, float *dv, float *datt_buf, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int hd)
{
    attention_bwd(dq, dk, dv, datt_buf, NULL, dout, att, q, k, v, B, T, H, KVH, hd);
}

void attention_backward_lean(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                             const float *q, const float *k, const float *v, int B, int T, int H, int KVH, int hd)
{
    attention_bwd(dq, dk, dv, scratch, scratch + (size_t)T * T, dout, NULL, q, k, v, B, T, H, KVH, hd);
}

/* ------------------------------------------------------------------------
 * SwiGLU gate (Shazeer 2020): out = ts_siluf(a) * b, silu(a) = a * sigmoid(a).
 * Backward needs one sigmoid per element, sig = ts_sigmoidf(a[i]):
 *   da[i] += (dout[i] * b[i]) * (sig * (1.0f + a[i] * (1.0f - sig)))
 *   db[i] += dout[i] * (a[i] * sig)
 * (a[i] * sig may differ from the forward's ts_siluf in the last bit; it is
 * a gradient, and one exp instead of two halves the cost.)
 * ---------------------------------------------------------------------- */
void swiglu_forward(float *out, const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) out[i] = ts_siluf(a[i]) * b[i];
}

/* swiglu_forward that also writes sig[i] = ts_sigmoidf(a[i]), the float backward needs: both
 * from one e^-a (ts_siluf and ts_sigmoidf divide by the same 1 + e^-a), so a training step
 * that keeps sig computes the exponential once instead of twice. */
void swiglu_forward_sig(float *out, float *sig, const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        double den = 1.0 + expf_core(-a[i]);
        sig[i] = (float)(1.0 / den);
        out[i] = silu_over(a[i], den) * b[i];
    }
}

/* In blocks of SWIGLU_BLK: the sigmoids first, into a local array (a loop of
 * ts_sigmoidf alone vectorises), then each gradient in its own loop; with
 * "if (da)" inside one loop the compiler kept it scalar (7x slower). */
#define SWIGLU_BLK 256
void swiglu_backward_sig(float *da, float *db, const float *dout, const float *a, const float *b, const float *sig,
                         size_t n)
{
    size_t i;
    if (da) for (i = 0; i < n; i++) da[i] += (dout[i] * b[i]) * (sig[i] * (1.0f + a[i] * (1.0f - sig[i])));
    if (db) for (i = 0; i < n; i++) db[i] += dout[i] * (a[i] * sig[i]);
}

void swiglu_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n)
{
    float sig[SWIGLU_BLK];
    size_t i0, i, m;
    for (i0 = 0; i0 < n; i0 += m) {
        m = n - i0 < SWIGLU_BLK ? n - i0 : SWIGLU_BLK;
        for (i = 0; i < m; i++) sig[i] = ts_sigmoidf(a[i0 + i]);
        swiglu_backward_sig(da ? da + i0 : NULL, db ? db + i0 : NULL, dout + i0, a + i0, b + i0, sig, m);
    }
}

/* ------------------------------------------------------------------------
 * Residual connection.
 * ---------------------------------------------------------------------- */
void residual_forward(float *out, const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(float *da, float *db, const float *dout, size_t n)
{
    size_t i;
    if (da) for (i = 0; i < n; i++) da[i] += dout[i];
    if (db) for (i = 0; i < n; i++) db[i] += dout[i];
}

/* ------------------------------------------------------------------------
 * Inverted dropout with a counter-based mask: element i is kept when
 *   u = (float)(hash64(seed, first + i) >> 40) * 2^-24   (24 bits, exact in float)
 * (first: the index of element 0 in the whole tensor, when this is a slice of it)
 * satisfies u >= p, so P(drop) = p up to 2^-24. A kept element is scaled by
 * keep = 1.0f / (1.0f - p) (one float division per call); mask[i] is keep
 * or 0.0f and out[i] = inp[i] * mask[i]. p <= 0 copies with mask 1;
 * p >= 1 drops everything. mask may be NULL when no backward will run.
 * ---------------------------------------------------------------------- */
void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed, uint64_t first)
{
    size_t i;
    float keep;
    if (!(p > 0.0f)) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        if (mask) for (i = 0; i < n; i++) mask[i] = 1.0f;
        return;
    }
    keep = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (i = 0; i < n; i++) {
        float u = (float)(hash64(seed, first + (uint64_t)i) >> 40) * 0x1p-24f;
        float m = u >= p ? keep : 0.0f;
        if (mask) mask[i] = m;
        out[i] = inp[i] * m;
    }
}

void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}

/* ------------------------------------------------------------------------
 * Softmax cross-entropy, per row of V logits x with target t:
 *   m = max_v x[v] (sequential); e[v] = ts_expf(x[v] - m);
 *   s = sum_v e[v] (sequential in v from 0.0f); probs[v] = e[v] / s;
 *   losses[n] = -((x[t] - m) - ts_logf(s)).
 * Target conventions: t < 0 means "ignore this position" (loss 0.0f, no
 * gradient; probs are still written). t >= V is a caller bug: it is never
 * read out of bounds, and its loss is NaN so the bug cannot pass silently.
 * ---------------------------------------------------------------------- */
void softmax_crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets, int N, int V)
{
    int n0, n, v, k;
    for (n0 = 0; n0 < N; n0 += 4) {   /* four rows at a time: their sums side by side */
        int rows = N - n0 < 4 ? N - n0 : 4;
        float m[4], xt[4], s[4];
        for (n = n0; n < n0 + rows; n++) {
            const float *x = logits + (size_t)n * V;
            float *p = probs + (size_t)n * V;
            int t = targets[n];
            k = n - n0;
            xt[k] = t >= 0 && t < V ? x[t] : 0.0f;  /* read first: probs may be logits */
            m[k] = max_of(x, V);
            for (v = 0; v < V; v++) p[v] = ts_expf(x[v] - m[k]);   /* apart from the sum: vectorises */
        }
        row_sums4(s, probs + (size_t)n0 * V, NULL, NULL, (size_t)V, V, 0, rows);
        for (n = n0; n < n0 + rows; n++) {
            float *p = probs + (size_t)n * V;
            int t = targets[n];
            k = n - n0;
            for (v = 0; v < V; v++) p[v] = p[v] / s[k];
            if (t < 0) losses[n] = 0.0f;
            else if (t >= V) losses[n] = f32_from_bits(0x7fc00000u);
            else losses[n] = -((xt[k] - m[k]) - ts_logf(s[k]));
        }
    }
}

/* dlogits[v] += dloss * (probs[v] - [v == t]); the target's term is added as
 * the single value dloss * (probs[t] - 1.0f). Rows with dloss == 0 and rows
 * whose target is outside [0, V) add nothing. */
void softmax_crossentropy_backward(float *dlogits, const float *dlosses, const float *probs, const int *targets,
                                   int N, int V)
{
    int n, v;
    for (n = 0; n < N; n++) {
        float *d = dlogits + (size_t)n * V;
        const float *p = probs + (size_t)n * V;
        float dl = dlosses[n], d_target;
        int t = targets[n];
        if (dl == 0.0f || t < 0 || t >= V) continue;
        d_target = d[t];
        for (v = 0; v < V; v++) d[v] += dl * p[v];
        d[t] = d_target + dl * (p[t] - 1.0f);
    }
}

/* Register blocks for attention_row_forward: ATT_BLOCK scores (the key
 * cache's block, tensor.h), ATT_OB outputs. */
#define ATT_SB ATT_BLOCK
#define ATT_OB 32

/* att[s0..s0+n) = (sum_i q[i]*kb[i][s - s0] sequential in i, from 0.0f) * scale,
 * kb the (hd, ATT_SB) block of keys of positions s0.. . The partial sums live
 * in a local block, not in att: written through a pointer they would go to
 * memory and back on every i (the compiler cannot prove att and kb apart),
 * and that round trip was the decoder's largest cost. */
static void att_scores_block(float *att, const float *qv, const float *kb, int s0, int n, int hd, float scale)
{
    int i, j;
    if (n == ATT_SB) {   /* four named 16-wide blocks: the form compilers keep in registers */
        float acc0[16], acc1[16], acc2[16], acc3[16];
        for (j = 0; j < 16; j++) { acc0[j] = 0.0f; acc1[j] = 0.0f; acc2[j] = 0.0f; acc3[j] = 0.0f; }
        for (i = 0; i < hd; i++) {
            const float *krow = kb + (size_t)i * ATT_SB;
            float qi = qv[i];
            for (j = 0; j < 16; j++) {
                acc0[j] += qi * krow[j];
                acc1[j] += qi * krow[16 + j];
                acc2[j] += qi * krow[32 + j];
                acc3[j] += qi * krow[48 + j];
            }
        }
        for (j = 0; j < 16; j++) {
            att[s0 + j] = acc0[j] * scale; att[s0 + 16 + j] = acc1[j] * scale;
            att[s0 + 32 + j] = acc2[j] * scale; att[s0 + 48 + j] = acc3[j] * scale;
        }
    } else {
        float acc[ATT_SB];
        for (j = 0; j < n; j++) acc[j] = 0.0f;
        for (i = 0; i < hd; i++) {
            const float *krow = kb + (size_t)i * ATT_SB;
            float qi = qv[i];
            for (j = 0; j < n; j++) acc[j] += qi * krow[j];
        }
        for (j = 0; j < n; j++) att[s0 + j] = acc[j] * scale;
    }
}

/* acc[0..n) += sum_s att[s] * v[s][i0 + j] over s in [s0, s1), sequential in
 * s (in a local block, as above); v (positions, hd). */
static void att_values_range(float *acc_io, const float *att, const float *v, int hd, int s0, int s1, int i0, int n)
{
    float acc[ATT_OB];
    int s, j;
    for (j = 0; j < n; j++) acc[j] = acc_io[j];
    if (n == ATT_OB) {
        for (s = s0; s < s1; s++) {
            const float *vv = v + (size_t)s * hd + i0;
            float w = att[s];
            for (j = 0; j < ATT_OB; j++) acc[j] += w * vv[j];
        }
    } else {
        for (s = s0; s < s1; s++) {
            const float *vv = v + (size_t)s * hd + i0;
            float w = att[s];
            for (j = 0; j < n; j++) acc[j] += w * vv[j];
        }
    }
    for (j = 0; j < n; j++) acc_io[j] = acc[j];
}

/* Attention for decoding: one query row against n_ctx cached positions of one
 * sequence, for every head. Same arithmetic, in the same order, as one row of
 * attention_forward (score[s] = (sum_i q[i]*k[s][i] sequential in i) * scale,
 * max, exp and sum sequential in s, multiply by 1/sum, output sum sequential
 * in s), so the KV-cache path gives bit-identical logits to the training
 * forward pass. The cache layout (tensor.h) is the loops' order: a head's keys
 * in (hd, ATT_BLOCK) blocks with the position fastest, so the score loop runs
 * across positions and vectorises without reordering any sum, and reads each
 * block front to back; a head's values are contiguous, position by position.
 * Which of the cache's three parts a position is read from changes where the
 * numbers come from, never which numbers or in what order they are added.
 * q (H, hd); out (H, hd); att scratch (n_ctx). */
void attention_row_forward(float *out, float *att, const float *q, const AttCache *c,
                           int n_ctx, int T, int H, int KVH, int hd)
{
    int group = H / KVH, h, s, i;
    float scale = 1.0f / sqrtf((float)hd);
    size_t head = (size_t)T * hd;    /* one kv head's keys, and its values */
    for (h = 0; h < H; h++) {
        const float *qv = q + (size_t)h * hd;
        size_t kvh = (size_t)(h / group) * head;
        float m, sum, inv;
        for (s = 0; s < n_ctx; s += ATT_SB) {
            int part = s < c->upto[0] ? 0 : s < c->upto[1] ? 1 : 2;
            att_scores_block(att, qv, c->k[part] + kvh + (size_t)s * hd, s, n_ctx - s < ATT_SB ? n_ctx - s : ATT_SB,
                             hd, scale);
        }
        m = max_of(att, n_ctx);
        sum = 0.0f;
        for (s = 0; s < n_ctx; s++) att[s] = ts_expf(att[s] - m);  /* apart from the sum: vectorises */
        for (s = 0; s < n_ctx; s++) sum += att[s];
        inv = 1.0f / sum;
        for (s = 0; s < n_ctx; s++) att[s] *= inv;
        for (i = 0; i < hd; i += ATT_OB) {
            float acc[ATT_OB];
            int n = hd - i < ATT_OB ? hd - i : ATT_OB, part, s0 = 0, j;
            for (j = 0; j < n; j++) acc[j] = 0.0f;
            for (part = 0; part < 3; part++) {
                int s1 = part < 2 ? c->upto[part] : n_ctx;
                if (s1 > n_ctx) s1 = n_ctx;
                if (s1 > s0) { att_values_range(acc, att, c->v[part] + kvh, hd, s0, s1, i, n); s0 = s1; }
            }
            for (j = 0; j < n; j++) out[(size_t)h * hd + i + j] = acc[j];
        }
    }
}
