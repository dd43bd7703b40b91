/* prelude_c.h - the fixed part of every generated CPU source file.
 *
 * emit_c.c copies this file verbatim into the generated C, after `#define DINO_REAL float`
 * (or double), so that the generated file stands alone: the precision, the activations with
 * their first and second derivatives, and a packed, blocked matrix multiply that all the
 * layers, Jacobians and gradients reduce to. It is also compiled on its own by the tests.
 *
 * Nothing here knows about a particular model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef DINO_REAL
#define DINO_REAL float
#endif
typedef DINO_REAL real;

/* ---------------------------------------------------------------------------- activations */
/* act_F(x) = F(x), dact_F(x) = F'(x), d2act_F(x) = F''(x): the formulas of activations.def
 * (pasted here in the generated file), computed in double for accuracy where it is cheap and
 * rounded to real. */
#include "activations.def"

/* tanh in f32: a rational approximation (within 3.3e-7 relative of tanh, about 3 ulp) that the
 * compiler vectorises; libm's scalar tanh dominated f32 neural ODE training. f64 uses libm. */
static inline float tanh_f32(float x) {
    const float clamp = 7.90531110763549805f;
    float xc = x > clamp ? clamp : x < -clamp ? -clamp : x, x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return fabsf(x) < 0.0004f ? x : p * xc / q;
}
static inline real tanh_r(real x) { return sizeof(real) == 4 ? (real)tanh_f32((float)x) : (real)tanh((double)x); }
#define DINO_ACT_INLINE static inline
#define DINO_ACT_CALL static inline
DINO_SIGM_HELPER(static inline)
DINO_GAUSS_HELPERS(static inline, _libm)

/* phi and Phi for f32 (gelu's, as activations.def's formulas: in double, rounded to float), by
 * inlined code that the compiler vectorises instead of libm's scalar exp and erf calls (they
 * were a fifth of a single sample's value + Jacobian). Phi is 0.5 erfc(-x / sqrt 2). Over every
 * float x in [-5, 8] gelu and its two derivatives equal the libm formulas' but for 438, 28 and 0
 * of the 2.2e9 inputs (by 1-2 ulp; tests/test_gelu_f32.c --all); below -5, where 0.5 (1 + erf)
 * loses Phi's digits (0 from -8.3 on), they equal the same formulas on libm's erfc. f64 keeps
 * libm. */
/* e^a for -708 <= a <= 0 in double, inlined and vectorisable */
static inline double exp_neg(double a) {
    const double magic = 0x1.8p52, ln2_hi = 0x1.62e42fefa38p-1, ln2_lo = 5.497923018708371e-14;
    double kb = a * 1.4426950408889634 + magic, k = kb - magic;
    double r = (a - k * ln2_hi) - k * ln2_lo;
    double p = 1.0 / 479001600;  /* 1/12!: Taylor to r^12, |r| <= ln2/2 */
    p = p * r + 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1;
    p = p * r + 1;
    int64_t bits, scale;
    memcpy(&bits, &kb, sizeof bits);
    scale = (bits - 0x4338000000000000LL + 1023) << 52;   /* 2^k */
    double s;
    memcpy(&s, &scale, sizeof s);
    return p * s;
}
/* erfc(z) for z >= 0 in double: t e^(-z^2 + h(t)) with t = 2 / (2 + z) and h a polynomial of
 * degree 20 in w = (2 t - 1.16) / 0.84, fitted (Chebyshev, then expanded) on z in [0, 10.5]:
 * relative error below 1e-14 there; beyond, erfc is below 1e-49 and h is taken at 10.5 */
static inline double erfc_pos(double z) {
    double zc = z < 10.5 ? z : 10.5, t = 2 / (2 + zc), w = t * (2 / 0.84) - 1.16 / 0.84;
    double h = -4.9916994529774013e-09;
    h = h * w + 1.117904568263621e-08;
    h = h * w + 3.3669499678646753e-08;
    h = h * w - 1.3280894565884737e-07;
    h = h * w - 7.8489220093560261e-09;
    h = h * w + 7.5364292359977697e-07;
    h = h * w - 1.1405282865505571e-06;
    h = h * w - 2.1862099374081965e-06;
    h = h * w + 9.3143069407653909e-06;
    h = h * w - 2.2731758005189131e-06;
    h = h * w - 4.5732085307864046e-05;
    h = h * w + 7.3167946599790183e-05;
    h = h * w + 0.0001546842183685518;
    h = h * w - 0.00058703598432164965;
    h = h * w - 0.00026753001280617066;
    h = h * w + 0.0038771706031112949;
    h = h * w - 0.0012306784415267067;
    h = h * w - 0.030147659804268555;
    h = h * w + 0.01671605760636331;
    h = h * w + 0.57460997431223393;
    h = h * w - 0.56315678559326565;
    return t * exp_neg(h - z * z);
}
/* |x| with at most m (m >= 0), through the bits: a select the compiler vectorises; inf
 * gives m, and so does NaN (the callers multiply by x, which keeps NaN) */
static inline float abs_at_most(float x, float m) {
    uint32_t b, c;
    memcpy(&b, &x, sizeof b);
    memcpy(&c, &m, sizeof c);
    b &= 0x7fffffffu;
    b = b < c ? b : c;
    memcpy(&x, &b, sizeof x);
    return x;
}
static inline float phi_f32(float x) {
    double u = abs_at_most(x, 37.5f);
    return (float)(SQRT_2PI_INV * exp_neg(-0.5 * u * u));
}
static inline float Phi_f32(float x) { /* 0.5 erfc(-x / sqrt 2) */
    double e = 0.5 * erfc_pos(abs_at_most(x, 37.5f) * SQRT_2_INV);
    return (float)(e + (x >= 0) * (1 - 2 * e)); /* e, or 1 - e: a select the compiler vectorises */
}
static inline real phi(real x) { return sizeof(real) == 4 ? (real)phi_f32((float)x) : phi_libm(x); }
static inline real Phi(real x) { return sizeof(real) == 4 ? (real)Phi_f32((float)x) : Phi_libm(x); }
DINO_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)

/* ---------------------------------------------------------------------------- matrix multiply */
/* C[M,N] = (acc ? C : 0) + op(A)[M,K] op(B)[K,N], row-major with leading dimensions;
 * op(A)[i][k] = ta ? A[k*lda + i] : A[i*lda + k], likewise op(B). Blocks of A and B are
 * packed into panels so the micro-kernel streams contiguous memory; the micro-kernel keeps an
 * MR x NR tile of C in vector registers. */

/* The micro-kernel's tile is MR x NR = MR x 2 vectors, sized to the target's registers so the
 * accumulators never spill: 8 x 2 zmm of 32 on AVX-512, 6 x 2 ymm of 16 on AVX/AVX2 (a wider
 * tile there spilled and ran 30x slower), 4 x 2 xmm otherwise. */
#if defined(__AVX512F__)
#define VBYTES 64
enum { MR = 8 };
#elif defined(__AVX__)
#define VBYTES 32
enum { MR = 6 };
#else
#define VBYTES 16
enum { MR = 4 };
#endif
#define VLEN (VBYTES / (int)sizeof(real))
typedef real vreal __attribute__((vector_size(VBYTES)));
enum { KC = 256, MC = 120, NC = 2048 };   /* MC: a multiple of every MR */
#define NR (2 * VLEN)

static void pack_a(int ta, const real *A, long lda, long i0, long mc, long k0, long kc, real *Ap) {
    /* Ap: [ceil(mc/MR)][kc][MR] */
    for (long ip = 0; ip < mc; ip += MR) {
        long mr = mc - ip < MR ? mc - ip : MR;
        for (long k = 0; k < kc; k++) {
            for (long i = 0; i < mr; i++)
                *Ap++ = ta ? A[(k0 + k) * lda + i0 + ip + i] : A[(i0 + ip + i) * lda + k0 + k];
            for (long i = mr; i < MR; i++) *Ap++ = 0;
        }
    }
}

static void pack_b(int tb, const real *B, long ldb, long k0, long kc, long j0, long nc, real *Bp) {
    /* Bp: [ceil(nc/NR)][kc][NR] */
    for (long jp = 0; jp < nc; jp += NR) {
        long nr = nc - jp < NR ? nc - jp : NR;
        for (long k = 0; k < kc; k++) {
            if (!tb && nr == NR) {
                memcpy(Bp, B + (k0 + k) * ldb + j0 + jp, sizeof(real) * NR);
                Bp += NR;
                continue;
            }
            for (long j = 0; j < nr; j++) *Bp++ = tb ? B[(j0 + jp + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + jp + j];
            for (long j = nr; j < NR; j++) *Bp++ = 0;
        }
    }
}

/* One row of a register tile (a full strip of NR) into c, added to what c holds when acc. */
static inline void store_strip(real *c, vreal r0, vreal r1, int acc) {
    if (acc) {
        vreal o0, o1;
        memcpy(&o0, c, sizeof o0);
        memcpy(&o1, c + VLEN, sizeof o1);
        r0 += o0;
        r1 += o1;
    }
    memcpy(c, &r0, sizeof r0);
    memcpy(c + VLEN, &r1, sizeof r1);
}

static void micro_kernel(long kc, const real *restrict Ap, const real *restrict Bp, real *restrict C, long ldc,
                         long mr, long nr, int acc) {
    vreal c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = (vreal){0};
    for (long k = 0; k < kc; k++) {
        vreal b0, b1;
        memcpy(&b0, Bp, sizeof b0);
        memcpy(&b1, Bp + VLEN, sizeof b1);
        for (int i = 0; i < MR; i++) {
            real a = Ap[i];
            c0[i] += a * b0;
            c1[i] += a * b1;
        }
        Ap += MR;
        Bp += NR;
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) store_strip(C + i * ldc, c0[i], c1[i], acc);
        return;
    }
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            real v = j < VLEN ? c0[i][j] : c1[i][j - VLEN];
            C[i * ldc + j] = acc ? C[i * ldc + j] + v : v;
        }
}

/* Packing buffers, in slots kept between calls (a fresh large malloc per call would fault in
 * new pages every time). A call claims a free slot for its duration, starting its search at its
 * OpenMP thread number (so a parallel gemm's threads find theirs at once), and gives it back at
 * the end: two models of one spec (one loaded module) computing at once from two threads never
 * share a buffer (issue 19: keyed by the thread number alone, both callers' thread 0 did).
 * Plain arrays rather than thread-local storage: dynamic TLS in a dlopen'ed module trips up
 * LeakSanitizer in sanitized hosts. With every slot busy, a call gets buffers for itself. */
enum { SCRATCH_THREADS = 256 };
static real *scratch_buf[SCRATCH_THREADS][2];
static size_t scratch_len[SCRATCH_THREADS][2];
static int scratch_busy[SCRATCH_THREADS];

static int thread_number(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* A free slot, now this caller's, or -1 when all are busy. */
static int scratch_claim(void) {
    int t0 = thread_number();
    for (int i = 0; i < SCRATCH_THREADS; i++) {
        int t = (t0 + i) % SCRATCH_THREADS;
        if (!__atomic_load_n(&scratch_busy[t], __ATOMIC_RELAXED) &&
            !__atomic_exchange_n(&scratch_busy[t], 1, __ATOMIC_ACQUIRE))
            return t;
    }
    return -1;
}

static void scratch_release(int slot) {
    if (slot >= 0) __atomic_store_n(&scratch_busy[slot], 0, __ATOMIC_RELEASE);
}

/* A buffer of n reals for slot's buffer which (0: A, 1: B); *temporary says the caller must
 * free it (no slot). */
static real *scratch(int slot, int which, size_t n, int *temporary) {
    size_t bytes = (n * sizeof(real) + 63) / 64 * 64;
    *temporary = slot < 0;
    if (*temporary) return aligned_alloc(64, bytes);
    if (scratch_len[slot][which] < n) {
        free(scratch_buf[slot][which]);
        scratch_buf[slot][which] = aligned_alloc(64, bytes);
        scratch_len[slot][which] = n;
    }
    return scratch_buf[slot][which];
}

/* ---- a few rows (one sample's layers and Jacobian rows): no packing, or less of it.
 * Every element of C is the same chain of multiply-adds over k as in the packed path (the
 * micro-kernel's, from 0 in blocks of KC, each block's sum added to C), in the same order and
 * the same expressions, so a prediction does not depend on how many rows it was computed with. */
enum { SMALL_M = 4 * MR }; /* at most this many rows of C: the small paths */

/* micro_kernel on A and B in place: rows A + i lda (i < mr; the rest repeat row mr - 1 and are
 * not stored), B [kc][NR] rows ldb apart (a full strip: nr == NR). */
static void micro_direct(long kc, const real *restrict A, long lda, const real *restrict B, long ldb,
                         real *restrict C, long ldc, long mr, int acc) {
    vreal c0[MR], c1[MR];
    const real *a[MR];
    for (int i = 0; i < MR; i++) {
        a[i] = A + (i < mr ? i : mr - 1) * lda;
        c0[i] = c1[i] = (vreal){0};
    }
    for (long k = 0; k < kc; k++) {
        vreal b0, b1;
        memcpy(&b0, B + k * ldb, sizeof b0);
        memcpy(&b1, B + k * ldb + VLEN, sizeof b1);
        for (int i = 0; i < MR; i++) {
            real v = a[i][k];
            c0[i] += v * b0;
            c1[i] += v * b1;
        }
    }
    for (long i = 0; i < mr; i++) store_strip(C + i * ldc, c0[i], c1[i], acc);
}

/* C[M,N] (+)= A[M,K] B[K,N] for M <= SMALL_M, neither transposed: B is read in place (packing
 * it cost more than the multiply). The columns past the last full strip of NR go through the
 * packed path (*rest: where they start). */
static void gemm_small_nn(long M, long N, long K, const real *A, long lda, const real *B, long ldb, real *C,
                          long ldc, int acc, long *rest) {
    long full = N / NR * NR;
    for (long pc = 0; pc < K; pc += KC) {
        long kc = K - pc < KC ? K - pc : KC;
        for (long ir = 0; ir < M; ir += MR)
            for (long jr = 0; jr < full; jr += NR)
                micro_direct(kc, A + ir * lda + pc, lda, B + pc * ldb + jr, ldb, C + ir * ldc + jr, ldc,
                             M - ir < MR ? M - ir : MR, acc || pc > 0);
    }
    *rest = full;
}

/* pack_b of op(B) = B^T (B [N][K] rows ldb apart: a layer's weight in the forward pass), the
 * same panels; full strips in a loop of constant length NR, which the compiler unrolls (pack_b's
 * general loop took half of a single-sample prediction's time) */
#if defined(__AVX512F__)
#include <immintrin.h>
/* DINO_REAL_IS_DOUBLE: 1 when DINO_REAL is double (DINO_IS_double), else 0 (an unknown name) */
#define DINO_IS_double 1
#define DINO_IS_(r) DINO_IS_##r
#define DINO_IS(r) DINO_IS_(r)
#define DINO_REAL_IS_DOUBLE DINO_IS(DINO_REAL)
/* The VLEN x VLEN block at `in` (rows ldi apart) transposed into `out` (rows ldo apart). */
static inline void transpose_block(const real *in, long ldi, real *out, long ldo) {
#if DINO_REAL_IS_DOUBLE
    __m512d r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_pd(in + i * ldi);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int s = 0; s < 2; s++) { /* t[2q + s], 128-bit lane L: column 2L + s of rows 2q, 2q + 1 */
        __m512d ab0 = _mm512_shuffle_f64x2(t[s], t[2 + s], 0x44), ab1 = _mm512_shuffle_f64x2(t[s], t[2 + s], 0xee);
        __m512d cd0 = _mm512_shuffle_f64x2(t[4 + s], t[6 + s], 0x44), cd1 = _mm512_shuffle_f64x2(t[4 + s], t[6 + s], 0xee);
        _mm512_storeu_pd(out + (0 + s) * ldo, _mm512_shuffle_f64x2(ab0, cd0, 0x88));
        _mm512_storeu_pd(out + (2 + s) * ldo, _mm512_shuffle_f64x2(ab0, cd0, 0xdd));
        _mm512_storeu_pd(out + (4 + s) * ldo, _mm512_shuffle_f64x2(ab1, cd1, 0x88));
        _mm512_storeu_pd(out + (6 + s) * ldo, _mm512_shuffle_f64x2(ab1, cd1, 0xdd));
    }
#else
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(in + i * ldi);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int s = 0; s < 4; s++) { /* r[4q + s], 128-bit lane L: column 4L + s of rows 4q .. 4q + 3 */
        __m512 ab0 = _mm512_shuffle_f32x4(r[s], r[4 + s], 0x44), ab1 = _mm512_shuffle_f32x4(r[s], r[4 + s], 0xee);
        __m512 cd0 = _mm512_shuffle_f32x4(r[8 + s], r[12 + s], 0x44), cd1 = _mm512_shuffle_f32x4(r[8 + s], r[12 + s], 0xee);
        _mm512_storeu_ps(out + (0 + s) * ldo, _mm512_shuffle_f32x4(ab0, cd0, 0x88));
        _mm512_storeu_ps(out + (4 + s) * ldo, _mm512_shuffle_f32x4(ab0, cd0, 0xdd));
        _mm512_storeu_ps(out + (8 + s) * ldo, _mm512_shuffle_f32x4(ab1, cd1, 0x88));
        _mm512_storeu_ps(out + (12 + s) * ldo, _mm512_shuffle_f32x4(ab1, cd1, 0xdd));
    }
#endif
}
#endif

#if defined(__AVX512F__)
/* C[1,N] (+)= a[1,K] B^T for B [N][K] rows ldb apart, N and K multiples of VLEN: one sample
 * through a layer. Blocks of B are transposed in registers and used at once, two blocks of
 * VLEN outputs at a time (two chains), instead of packed into a buffer and read back: the same
 * chains as micro_kernel's (from 0 per block of KC, each block's sum added to C). */
static void row_bt(long N, long K, const real *restrict a, const real *restrict B, long ldb, real *restrict C,
                   int acc) {
    real t[2][VLEN * VLEN] __attribute__((aligned(64)));
    for (long j = 0; j < N; j += 2 * VLEN) {
        int two = j + 2 * VLEN <= N;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            vreal c0 = {0}, c1 = {0};
            for (long k0 = 0; k0 < kc; k0 += VLEN) {
                transpose_block(B + j * ldb + pc + k0, ldb, t[0], VLEN);
                if (two) transpose_block(B + (j + VLEN) * ldb + pc + k0, ldb, t[1], VLEN);
                for (int k = 0; k < VLEN; k++) {
                    real v = a[pc + k0 + k];
                    vreal b0, b1;
                    memcpy(&b0, t[0] + k * VLEN, sizeof b0);
                    c0 += v * b0;
                    if (two) {
                        memcpy(&b1, t[1] + k * VLEN, sizeof b1);
                        c1 += v * b1;
                    }
                }
            }
            vreal o;
            if (acc || pc > 0) {
                memcpy(&o, C + j, sizeof o);
                c0 += o;
            }
            memcpy(C + j, &c0, sizeof c0);
            if (two) {
                if (acc || pc > 0) {
                    memcpy(&o, C + j + VLEN, sizeof o);
                    c1 += o;
                }
                memcpy(C + j + VLEN, &c1, sizeof c1);
            }
        }
    }
}
#endif

static void pack_bt(const real *B, long ldb, long k0, long kc, long j0, long nc, real *Bp) {
    for (long jp = 0; jp < nc; jp += NR) {
        long nr = nc - jp < NR ? nc - jp : NR;
        if (nr < NR) {
            pack_b(1, B, ldb, k0, kc, j0 + jp, nr, Bp);
            Bp += kc * NR;
            continue;
        }
        long k = 0;
#if defined(__AVX512F__) /* blocks of VLEN x VLEN through registers */
        for (; k + VLEN <= kc; k += VLEN)
            for (int h = 0; h < 2; h++)
                transpose_block(B + (j0 + jp + h * VLEN) * ldb + k0 + k, ldb, Bp + k * NR + h * VLEN, NR);
#endif
        for (; k < kc; k++)
            for (long j = 0; j < NR; j++) Bp[k * NR + j] = B[(j0 + jp + j) * ldb + k0 + k];
        Bp += kc * NR;
    }
}

/* One row of C over up to 4 packed strips of B at once (eight independent chains, where the
 * 8-row micro-kernel would compute seven rows of zeros): strips s < ns of Bp, kc each. */
static void row_kernel(long kc, const real *restrict a, const real *restrict Bp, long ns, real *restrict C, long nc,
                       int acc) {
    vreal c0[4], c1[4];
    const real *b[4];
    for (int s = 0; s < 4; s++) {
        b[s] = Bp + (s < ns ? s : ns - 1) * kc * NR;
        c0[s] = c1[s] = (vreal){0};
    }
    for (long k = 0; k < kc; k++) {
        real v = a[k];
        for (int s = 0; s < 4; s++) {
            vreal b0, b1;
            memcpy(&b0, b[s] + k * NR, sizeof b0);
            memcpy(&b1, b[s] + k * NR + VLEN, sizeof b1);
            c0[s] += v * b0;
            c1[s] += v * b1;
        }
    }
    for (long s = 0; s < ns; s++) {
        long nr = nc - s * NR < NR ? nc - s * NR : NR;
        real *c = C + s * NR;
        if (nr == NR) {
            store_strip(c, c0[s], c1[s], acc);
            continue;
        }
        for (long j = 0; j < nr; j++) {
            real v = j < VLEN ? c0[s][j] : c1[s][j - VLEN];
            c[j] = acc ? c[j] + v : v;
        }
    }
}

static void gemm_serial(int ta, int tb, long M, long N, long K, const real *A, long lda, const real *B, long ldb,
                        real *C, long ldc, int acc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!acc)
            for (long i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(real) * (size_t)N);
        return;
    }
    long rest = 0; /* the columns the small path left to the packed one */
#if defined(__AVX512F__)
    if (M == 1 && !ta && tb && N % VLEN == 0 && K % VLEN == 0) {
        row_bt(N, K, A, B, ldb, C, acc);
        return;
    }
#endif
    if (!ta && !tb && M <= SMALL_M) {
        gemm_small_nn(M, N, K, A, lda, B, ldb, C, ldc, acc, &rest);
        if (rest == N) return;
        B += rest, C += rest, N -= rest;
    }
    long ncap = N < NC ? N : NC, mcap = M < MC ? M : MC, kcap = K < KC ? K : KC;
    int temp_a, temp_b, slot = scratch_claim();
    real *Bp = scratch(slot, 1, (size_t)(((ncap + NR - 1) / NR) * NR * kcap), &temp_b);
    real *Ap = scratch(slot, 0, (size_t)(((mcap + MR - 1) / MR) * MR * kcap), &temp_a);
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            int add = acc || pc > 0;
            if (tb) pack_bt(B, ldb, pc, kc, jc, nc, Bp);
            else pack_b(0, B, ldb, pc, kc, jc, nc, Bp);
            if (M == 1 && !ta) { /* one row: A in place, four strips at a time */
                for (long jr = 0; jr < nc; jr += 4 * NR) {
                    long ns = (nc - jr + NR - 1) / NR;
                    row_kernel(kc, A + pc, Bp + jr * kc, ns < 4 ? ns : 4, C + jc + jr, nc - jr, add);
                }
                continue;
            }
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(ta, A, lda, ic, mc, pc, kc, Ap);
                for (long jr = 0; jr < nc; jr += NR)
                    for (long ir = 0; ir < mc; ir += MR)
                        micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                                     mc - ir < MR ? mc - ir : MR, nc - jr < NR ? nc - jr : NR, add);
            }
        }
    }
    if (temp_a) free(Ap);
    if (temp_b) free(Bp);
    scratch_release(slot);
}

/* Splits C into row (or, for few rows, column) stripes, one per thread. */
static __attribute__((noinline)) void gemm(int ta, int tb, long M, long N, long K, const real *A, long lda, const real *B, long ldb, real *C,
                 long ldc, int acc) {
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    double flops = 2.0 * M * N * K;
    if (threads > 1 && flops > 4e6 && !omp_in_parallel()) {
        int by_rows = M >= 4 * MR * threads || M >= N;
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            long len = by_rows ? M : N, unit = by_rows ? MR : NR;
            long chunk = ((len + nt - 1) / nt + unit - 1) / unit * unit;
            long lo = t * chunk, hi = lo + chunk < len ? lo + chunk : len;
            if (lo < hi) {
                if (by_rows)
                    gemm_serial(ta, tb, hi - lo, N, K, ta ? A + lo : A + lo * lda, lda, B, ldb, C + lo * ldc, ldc, acc);
                else
                    gemm_serial(ta, tb, M, hi - lo, K, A, lda, tb ? B + lo * ldb : B + lo, ldb, C + lo, ldc, acc);
            }
        }
        return;
    }
#endif
    gemm_serial(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
}

/* Large element-wise loops run on all threads; small ones don't pay for it. */
#define PAR_MIN (1L << 17)
/* An OpenMP pragma when compiled with OpenMP, else nothing (no unknown-pragma warnings). */
#ifdef _OPENMP
#define DINO_OMP(x) _Pragma(x)
#else
#define DINO_OMP(x)
#endif
/* The loop (the arguments after pragma) under the OpenMP pragma when cond holds, else plainly:
 * not through `if (cond)` in the pragma, with which libgomp still set up a team of one on every
 * call (an allocation and a system call: a fifth of a single-sample prediction). */
#define PAR_FOR(cond, pragma, ...)   \
    do {                             \
        if (cond) {                  \
            DINO_OMP(pragma)         \
            __VA_ARGS__              \
        } else {                     \
            __VA_ARGS__              \
        }                            \
    } while (0)

/* ---------------------------------------------------------------------------- batch kernels */
/* The IR's element-wise and shape operations over a whole batch. A value of a node is
 * (n, R, D): n samples of R rows of D columns, row-major. */

/* ew_act_F, ew_dact_F, ew_d2act_F for each activation F of activations.def. With GCC on
 * AVX-512 in 512-bit vectors (GCC prefers 256 bits): the inlined f32 gelu's double math runs
 * 1.5x faster; the element-wise results are the same. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define ACT_LOOP __attribute__((unused, noinline, target("prefer-vector-width=512")))
#else
#define ACT_LOOP __attribute__((unused, noinline))
#endif
#define DEFINE_ACT_LOOPS(X, f, ...)                                                                \
    static ACT_LOOP void ew_act_##f(long N, const real *restrict a, real *restrict y) {            \
        PAR_FOR(N > PAR_MIN, "omp parallel for", for (long i = 0; i < N; i++) y[i] = act_##f(a[i]););  \
    }                                                                                              \
    static ACT_LOOP void ew_dact_##f(long N, const real *restrict a, real *restrict y) {           \
        PAR_FOR(N > PAR_MIN, "omp parallel for", for (long i = 0; i < N; i++) y[i] = dact_##f(a[i]);); \
    }                                                                                              \
    static ACT_LOOP void ew_d2act_##f(long N, const real *restrict a, real *restrict y) {          \
        PAR_FOR(N > PAR_MIN, "omp parallel for", for (long i = 0; i < N; i++) y[i] = d2act_##f(a[i]);); \
    }
DINO_ACTIVATION_ROWS(DEFINE_ACT_LOOPS, _)

/* The batch kernels are not inlined: each is called from many places in a generated program,
 * and inlining every call (with the sizes as constants) made -O3 compile an ODE model's
 * unrolled steps 3.5x slower for no measurable gain (the calls work on whole batches). */
#define UNUSED static __attribute__((unused, noinline))

UNUSED void ew_fill(long N, real c, real *y) { for (long i = 0; i < N; i++) y[i] = c; }
UNUSED void ew_add(long N, const real *a, const real *b, real *y) {
    PAR_FOR(N > PAR_MIN, "omp parallel for simd", for (long i = 0; i < N; i++) y[i] = a[i] + b[i];);
}
UNUSED void ew_sub(long N, const real *a, const real *b, real *y) {
    PAR_FOR(N > PAR_MIN, "omp parallel for simd", for (long i = 0; i < N; i++) y[i] = a[i] - b[i];);
}
UNUSED void ew_scale(long N, real c, const real *a, real *y) {
    PAR_FOR(N > PAR_MIN, "omp parallel for simd", for (long i = 0; i < N; i++) y[i] = c * a[i];);
}
UNUSED void ew_addc(long N, real c, const real *a, real *y) {
    PAR_FOR(N > PAR_MIN, "omp parallel for simd", for (long i = 0; i < N; i++) y[i] = a[i] + c;);
}
/* y (n, R, D) = a (n, Ra, Da) * b (n, Rb, Db): a side with fewer rows is read by groups (row r
 * reads row r / (R / Ra)), a side with 1 column is broadcast over the columns */
UNUSED void mul_bcast(long n, int R, int D, const real *a, int Ra, int Da, const real *b, int Rb, int Db, real *y) {
    if (Ra == R && Da == D && Rb == R && Db == D) {
        PAR_FOR(n * R * D > PAR_MIN, "omp parallel for simd", for (long i = 0; i < n * R * D; i++) y[i] = a[i] * b[i];);
        return;
    }
    PAR_FOR(n * R * D > PAR_MIN, "omp parallel for",
            for (long s = 0; s < n; s++) for (int r = 0; r < R; r++) {
                const real *pa = a + (s * Ra + r / (R / Ra)) * Da, *pb = b + (s * Rb + r / (R / Rb)) * Db;
                real *py = y + (s * R + r) * D;
                if (Da == D && Db == D)
                    for (int j = 0; j < D; j++) py[j] = pa[j] * pb[j];
                else
                    for (int j = 0; j < D; j++) py[j] = pa[Da > 1 ? j : 0] * pb[Db > 1 ? j : 0];
            });
}
/* y (n, R, R) = identity per sample */
UNUSED void eye(long n, int R, real *y) {
    memset(y, 0, sizeof(real) * (size_t)(n * R * R));
    for (long s = 0; s < n; s++)
        for (int i = 0; i < R; i++) y[(s * R + i) * R + i] = 1;
}
/* y (M, D) += b (D) on every row */
UNUSED void bias_add(long M, int D, const real *b, real *y) {
    PAR_FOR(M * D > PAR_MIN, "omp parallel for",
            for (long i = 0; i < M; i++) for (int j = 0; j < D; j++) y[i * D + j] += b[j];);
}
/* g (D) += sum over rows of a (M, D) */
UNUSED void grad_bias(long M, int D, const real *a, real *g) {
    for (long i = 0; i < M; i++)
        for (int j = 0; j < D; j++) g[j] += a[i * D + j];
}
/* y (M, D): row m = sum of rows m K .. m K + K - 1 of a (M K, D) */
UNUSED void sum_rows(long M, int K, int D, const real *a, real *y) {
    for (long m = 0; m < M; m++)
        for (int j = 0; j < D; j++) {
            real acc = 0;
            for (int r = 0; r < K; r++) acc += a[(m * K + r) * D + j];
            y[m * D + j] = acc;
        }
}
/* dopri5's error norm: the mean over N entries of (e / (atol + rtol max(|z|, |y|)))^2 for the
 * error estimate e, the state z and the new state y */
UNUSED double err_norm(long N, const real *e, const real *z, const real *y, double atol, double rtol) {
    double acc = 0;
    for (long i = 0; i < N; i++) {
        double sc = atol + rtol * fmax(fabs((double)z[i]), fabs((double)y[i])), q = e[i] / sc;
        acc += q * q;
    }
    return N ? acc / (double)N : 0;
}
/* One dopri5 attempt's step control, for the whole batch: s = terms indexes of {error norm,
 * this attempt runs (-1: always), t, h (-1: t0, h0), accepted, next t, next h, next attempt
 * runs}. Accepts when the RMS error is at most 1; the next step is h 0.9 err^(-1/5), within
 * [0.2 h, 5 h] and cut at t1; an attempt that does not run changes nothing. */
UNUSED void dopri5_control(double *terms, const int *s, double t0, double t1, double h0) {
    int run = s[1] < 0 || terms[s[1]] != 0;
    double t = s[2] < 0 ? t0 : terms[s[2]], h = s[3] < 0 ? h0 : terms[s[3]], err = sqrt(terms[s[0]]);
    int accept = run && err <= 1;
    double fac = err != err ? 0.2 : err > 0 ? 0.9 * pow(err, -0.2) : 5;
    fac = fac < 0.2 ? 0.2 : fac > 5 ? 5 : fac;
    double t_next = accept ? t + h : t, h_next = run ? h * fac : h;
    if (t_next + h_next > t1) h_next = t1 - t_next;
    terms[s[4]] = accept;
    terms[s[5]] = t_next;
    terms[s[6]] = h_next;
    terms[s[7]] = run && t1 - t_next > 1e-12 * (t1 - t0);
}
/* the sum of all N entries of a */
UNUSED double sum_all(long N, const real *a) {
    double acc = 0;
    for (long i = 0; i < N; i++) acc += a[i];
    return acc;
}
/* y (M, 1) = sum over the D columns of a (M, D) */
UNUSED void sum_cols(long M, int D, const real *a, real *y) {
    for (long i = 0; i < M; i++) {
        real acc = 0;
        for (int j = 0; j < D; j++) acc += a[i * D + j];
        y[i] = acc;
    }
}
/* y (M K, D): each row of a (M, D) repeated K times */
UNUSED void bcast_rows(long M, int K, int D, const real *a, real *y) {
    for (long m = 0; m < M; m++)
        for (int r = 0; r < K; r++) memcpy(y + (m * K + r) * D, a + m * D, sizeof(real) * (size_t)D);
}
/* y (n, R, D) with row r = c[r] in every column */
UNUSED void row_fill(long n, int R, int D, const real *c, real *y) {
    for (long s = 0; s < n; s++)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < D; j++) y[(s * R + r) * D + j] = c[r];
}
/* a (n, Ra, D) into rows off .. off + Ra of y (n, R, D): one piece of a stack */
UNUSED void stack_piece(long n, int R, int D, int off, const real *a, int Ra, real *y) {
    for (long s = 0; s < n; s++) memcpy(y + (s * R + off) * D, a + s * Ra * D, sizeof(real) * (size_t)Ra * D);
}
/* rows off .. off + R of a (n, Ra, D) into y (n, R, D) */
UNUSED void row_slice(long n, int Ra, int off, int R, int D, const real *a, real *y) {
    for (long s = 0; s < n; s++) memcpy(y + s * R * D, a + (s * Ra + off) * D, sizeof(real) * (size_t)R * D);
}
/* a (n, Ra, D) at rows off .. off + Ra of y (n, R, D), zeros elsewhere */
UNUSED void row_pad(long n, int R, int off, int Ra, int D, const real *a, real *y) {
    memset(y, 0, sizeof(real) * (size_t)(n * R * D));
    for (long s = 0; s < n; s++) memcpy(y + (s * R + off) * D, a + s * Ra * D, sizeof(real) * (size_t)Ra * D);
}
/* y (M, D) = a (M, 1) repeated over D columns */
UNUSED void bcast_cols(long M, int D, const real *a, real *y) {
    for (long i = 0; i < M; i++)
        for (int j = 0; j < D; j++) y[i * D + j] = a[i];
}
/* columns off .. off+D of a (M, Da) into y (M, D) */
UNUSED void slice_cols(long M, int Da, int off, int D, const real *a, real *y) {
    for (long i = 0; i < M; i++) memcpy(y + i * D, a + i * Da + off, sizeof(real) * (size_t)D);
}
/* a (M, Da) into columns off .. of y (M, D), zeros elsewhere */
UNUSED void pad_cols(long M, int Da, int off, int D, const real *a, real *y) {
    memset(y, 0, sizeof(real) * (size_t)(M * D));
    for (long i = 0; i < M; i++) memcpy(y + i * D + off, a + i * Da, sizeof(real) * (size_t)Da);
}
/* one piece of a concatenation: a (n, Ra, Da), read by groups when Ra < R, into columns
 * off .. off+Da of y (n, R, D) */
UNUSED void concat_piece(long n, int R, int D, int off, const real *a, int Ra, int Da, real *y) {
    for (long s = 0; s < n; s++)
        for (int r = 0; r < R; r++) memcpy(y + (s * R + r) * D + off, a + (s * Ra + r / (R / Ra)) * Da, sizeof(real) * (size_t)Da);
}
