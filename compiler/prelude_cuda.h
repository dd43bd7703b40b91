/* prelude_cuda.h - the fixed part of every generated CUDA source file.
 *
 * emit_cuda.c copies this file verbatim into the generated .cu after `#define DINO_REAL float`
 * (or double). NVRTC compiles the result with no include path, so nothing here may #include
 * anything: the few types needed are defined here, and only CUDA built-ins are used (tanh, erf,
 * exp, atomicAdd, __syncthreads, __shfl_xor_sync). atomicAdd on double needs sm_60 or later.
 *
 * What is here, and what uses it:
 *   activations     act_F, dact_F, d2act_F: the formulas of prelude_c.h, evaluated in double
 *                   where prelude_c.h does (so f32 results round the same way as on the CPU)
 *   matrix multiply gemm_tile: one BM x BN tile of op(A) op(B) over a range of K, in shared
 *                   memory tiles with register blocking; generated kernels add their own
 *                   epilogue (bias, activation, ...). gemm: the whole C = (acc ? C : 0) + op(A)
 *                   op(B) of prelude_c.h's gemm, for a grid of tiles.
 *   reductions      block_sum, block_max; grad_bias_part, loss_squared, loss_cross_entropy
 *   shape ops       sum_rows_at, sum_cols_at, slice_at, pad_at: one output element each (the
 *                   element-wise ops themselves are written inline by the emitter, fused)
 *   utility kernels dino_set_step, dino_gather, dino_gather_label, dino_iota, dino_adam, dino_adamw,
 *                   dino_sgd: launched by the runtime directly (extern "C", grid-stride loops,
 *                   so any grid works; block 256, grid min(ceil(count / 256), 65535) is good)
 *
 * Every block of a generated kernel has DINO_THREADS (256) threads in x.
 *
 * The tests compile this file with NVRTC for sm_80 and sm_90 (tests/cuda_nvrtc_specs) and run
 * it in the CPU emulation of tests/cuda_emulated (one fiber per CUDA thread), which checks the
 * indexing, the tiling and the reductions but not the GPU memory model, warp behaviour or speed. */

#ifndef DINO_REAL
#define DINO_REAL float
#endif
typedef DINO_REAL real;
typedef int int32_t;

#define DINO_DEV __device__ __forceinline__
/* Functions with long bodies that many places call (the transcendental activations, the
 * product loop of a tile kernel's layers) are compiled once and called: inlining every call
 * made NVRTC's time grow with the number of ODE steps (node_mnist: 26 s against 9 s). */
#define DINO_CALL __device__ __noinline__
enum { DINO_THREADS = 256 };

DINO_DEV long dino_minl(long a, long b) { return a < b ? a : b; }

/* ---------------------------------------------------------------------------- activations */
/* act_F(x) = F(x), dact_F(x) = F'(x), d2act_F(x) = F''(x): the formulas of activations.def
 * (pasted here in the generated file), computed in double where prelude_c.h computes in double.
 * Here tanh is the double one for f32 too (prelude_c.h approximates it in f32). */
#include "activations.def"

DINO_DEV real tanh_r(real x) { return (real)tanh((double)x); }
#define DINO_ACT_INLINE DINO_DEV
#define DINO_ACT_CALL DINO_CALL
DINO_ACTIVATION_HELPERS(DINO_DEV)
DINO_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)

/* ---------------------------------------------------------------------------- matrix multiply */
/* op(A)[i][k] = TA ? A[k*lda + i] : A[i*lda + k], likewise op(B)[k][j] with TB and ldb, all
 * row-major, as in prelude_c.h's gemm.
 *
 * gemm_tile: this block's BM x BN tile of C = op(A)[M, K] op(B)[K, N], rows m0 .., columns
 * n0 .., summed over k0 <= k < k1, into registers (gemm_tile_acc adds to what they hold): 256 threads as 16 x 16, thread (tx, ty)
 * = (t % 16, t / 16) holding acc[i][jj] = C[m0 + ty + 16 i][n0 + tx + 16 jj] (so a warp's
 * stores are consecutive columns). Each step stages a BM x 16 slice of op(A) and a 16 x BN
 * slice of op(B) in shared memory (zero outside the matrices, so any M, N, K work) and every
 * thread does its (BM/16) x (BN/16) outer products from registers. BM, BN in {16, 32, 64}.
 * Every thread of the block must call it (it synchronises). */
enum { GEMM_BK = 16, GEMM_MAX_BM = 64, GEMM_MAX_BN = 64, TILE_MAX_BM = 32 };

/* The shared memory of every gemm_tile and gemm_tile_shared, whatever their (TA, TB, BM, BN):
 * declared once here, not inside the templates, so a kernel that reaches many instantiations
 * holds one copy (ptxas gives each function-scope __shared__ array of each instantiation its
 * own space and sums them: 0xd600 bytes against the 0xc000 static limit, issue 19).
 * dino_gemm_ab: the op(A) and op(B) slices (GEMM_BK x (BM + 1), GEMM_BK x (BN + 1));
 * dino_gemm_c: gemm_tile_shared's result (BM x (BN + 1), BM <= TILE_MAX_BM), kept apart from
 * dino_gemm_ab because threads read their part of it while others start the next product. */
__shared__ real dino_gemm_ab[GEMM_BK * (GEMM_MAX_BM + 1) + GEMM_BK * (GEMM_MAX_BN + 1)];
__shared__ real dino_gemm_c[TILE_MAX_BM * (GEMM_MAX_BN + 1)];

template <int TA, int TB, int BM, int BN>
DINO_DEV void gemm_tile_acc(long M, long N, long k0, long k1, const real *__restrict__ A, long lda,
                            const real *__restrict__ B, long ldb, long m0, long n0, real (&acc)[BM / 16][BN / 16]) {
    static_assert(BM <= GEMM_MAX_BM && BN <= GEMM_MAX_BN, "gemm tile larger than dino_gemm_ab");
    /* op(A) slice, k-major; +1 against bank conflicts; then the op(B) slice */
    real(*As)[BM + 1] = reinterpret_cast<real(*)[BM + 1]>(dino_gemm_ab);
    real(*Bs)[BN + 1] = reinterpret_cast<real(*)[BN + 1]>(dino_gemm_ab + GEMM_BK * (BM + 1));
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    for (long kt = k0; kt < k1; kt += GEMM_BK) {
        /* consecutive threads read consecutive addresses of A and B */
        for (int q = t; q < BM * GEMM_BK; q += DINO_THREADS) {
            int mm = TA ? q % BM : q / GEMM_BK, kk = TA ? q / BM : q % GEMM_BK;
            long gm = m0 + mm, gk = kt + kk;
            As[kk][mm] = gm < M && gk < k1 ? (TA ? A[gk * lda + gm] : A[gm * lda + gk]) : (real)0;
        }
        for (int q = t; q < GEMM_BK * BN; q += DINO_THREADS) {
            int nn = TB ? q / GEMM_BK : q % BN, kk = TB ? q % GEMM_BK : q / BN;
            long gn = n0 + nn, gk = kt + kk;
            Bs[kk][nn] = gn < N && gk < k1 ? (TB ? B[gn * ldb + gk] : B[gk * ldb + gn]) : (real)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; kk++) {
            real a[BM / 16], b[BN / 16];
            for (int i = 0; i < BM / 16; i++) a[i] = As[kk][ty + 16 * i];
            for (int jj = 0; jj < BN / 16; jj++) b[jj] = Bs[kk][tx + 16 * jj];
            for (int i = 0; i < BM / 16; i++)
                for (int jj = 0; jj < BN / 16; jj++) acc[i][jj] += a[i] * b[jj];
        }
        __syncthreads();
    }
}

/* The same, into zeroed accumulators: the tile of op(A) op(B) over k0 <= k < k1. */
template <int TA, int TB, int BM, int BN>
DINO_DEV void gemm_tile(long M, long N, long k0, long k1, const real *__restrict__ A, long lda,
                        const real *__restrict__ B, long ldb, long m0, long n0, real (&acc)[BM / 16][BN / 16]) {
    for (int i = 0; i < BM / 16; i++)
        for (int jj = 0; jj < BN / 16; jj++) acc[i][jj] = 0;
    gemm_tile_acc<TA, TB, BM, BN>(M, N, k0, k1, A, lda, B, ldb, m0, n0, acc);
}

/* For tile kernels: gemm_tile, not inlined, its result left in shared memory, where each
 * thread reads back its own part with tile_at (so no barrier is needed after it). */
template <int TA, int TB, int BM, int BN>
DINO_CALL const real *gemm_tile_shared(long M, long N, long k0, long k1, const real *A, long lda, const real *B,
                                       long ldb, long m0, long n0) {
    static_assert(BM <= TILE_MAX_BM && BN <= GEMM_MAX_BN, "gemm_tile_shared tile larger than dino_gemm_c");
    real(*C)[BN + 1] = reinterpret_cast<real(*)[BN + 1]>(dino_gemm_c);
    real acc[BM / 16][BN / 16];
    gemm_tile<TA, TB, BM, BN>(M, N, k0, k1, A, lda, B, ldb, m0, n0, acc);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i = 0; i < BM / 16; i++)
        for (int jj = 0; jj < BN / 16; jj++) C[ty + 16 * i][tx + 16 * jj] = acc[i][jj];
    return &C[0][0];
}
/* This thread's acc[i][jj] of a gemm_tile_shared result c of a BM x BN tile. */
DINO_DEV real tile_at(const real *c, int bn, int i, int jj) {
    return c[(threadIdx.x / 16 + 16 * i) * (bn + 1) + threadIdx.x % 16 + 16 * jj];
}

/* C[m, j] = (accumulate ? C[m, j] : 0) + acc for this thread's part of the tile at (m0, n0). */
template <int BM, int BN>
DINO_DEV void gemm_tile_store(const real (&acc)[BM / 16][BN / 16], long M, long N, long m0, long n0, real *C, long ldc,
                              int accumulate) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i = 0; i < BM / 16; i++) {
        long m = m0 + ty + 16 * i;
        if (m >= M) break;
        for (int jj = 0; jj < BN / 16; jj++) {
            long j = n0 + tx + 16 * jj;
            if (j >= N) break;
            C[m * ldc + j] = accumulate ? C[m * ldc + j] + acc[i][jj] : acc[i][jj];
        }
    }
}

/* C[m, j] += acc with atomicAdd: partial sums over a split K (parameter gradients). */
template <int BM, int BN>
DINO_DEV void gemm_tile_atomic_add(const real (&acc)[BM / 16][BN / 16], long M, long N, long m0, long n0, real *C,
                                   long ldc) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i = 0; i < BM / 16; i++) {
        long m = m0 + ty + 16 * i;
        if (m >= M) break;
        for (int jj = 0; jj < BN / 16; jj++) {
            long j = n0 + tx + 16 * jj;
            if (j >= N) break;
            atomicAdd(C + m * ldc + j, acc[i][jj]);
        }
    }
}

/* C[M,N] = (accumulate ? C : 0) + op(A)[M,K] op(B)[K,N]: prelude_c.h's gemm, the tile of
 * this block. Launch grid (ceil(M / BM), ceil(N / BN)), 256 threads. */
template <int TA, int TB, int BM, int BN>
DINO_DEV void gemm(long M, long N, long K, const real *A, long lda, const real *B, long ldb, real *C, long ldc,
                   int accumulate) {
    const long m0 = (long)blockIdx.x * BM, n0 = (long)blockIdx.y * BN;
    real acc[BM / 16][BN / 16];
    gemm_tile<TA, TB, BM, BN>(M, N, 0, K, A, lda, B, ldb, m0, n0, acc);
    gemm_tile_store<BM, BN>(acc, M, N, m0, n0, C, ldc, accumulate);
}

/* Small layers, one output element per thread (no shared memory: for layers of a few dozen
 * inputs the operands stay in L1, and the code is a fraction of a tiled kernel's):
 *   linear_at:   (a W^T)[m, j] = sum_k a[m, k] W[j, k],  a (M, K), W (D, K)
 *   linear_t_at: (a W)[m, j]   = sum_k a[m, k] W[k, j],  a (M, K), W (K, D) */
DINO_DEV real linear_at(const real *__restrict__ a, long m, int K, const real *__restrict__ W, int j) {
    const real *x = a + m * K, *w = W + (long)j * K;
    real acc = 0;
    for (int k = 0; k < K; k++) acc += x[k] * w[k];
    return acc;
}
DINO_DEV real linear_t_at(const real *__restrict__ a, long m, int K, const real *__restrict__ W, int D, int j) {
    const real *x = a + m * K, *w = W + j;
    real acc = 0;
    for (int k = 0; k < K; k++) acc += x[k] * w[(long)k * D];
    return acc;
}

/* A small layer's input that is a concatenation is read piece by piece, continuing the sum:
 *   dot_acc:   acc + sum_k x[k] w[k * ldw]  (k < len), a piece in memory
 *   dot_const: acc + sum_k c w[k * ldw],               a constant piece (the time of an ODE) */
DINO_DEV real dot_acc(real acc, const real *__restrict__ x, const real *__restrict__ w, long ldw, int len) {
    for (int k = 0; k < len; k++) acc += x[k] * w[k * ldw];
    return acc;
}
DINO_DEV real dot_const(real acc, real c, const real *__restrict__ w, long ldw, int len) {
    for (int k = 0; k < len; k++) acc += c * w[k * ldw];
    return acc;
}

/* g (O, I) += a^T b for a (K, O), b (K, I), small O x I: this block adds rows blockIdx.x *
 * GRAD_W_ROWS .. of the entry blockIdx.y * 256 + threadIdx.x. Grid (ceil(K / GRAD_W_ROWS),
 * ceil(O * I / 256)). */
enum { GRAD_W_ROWS = 256 };
DINO_DEV void grad_w_part(long K, int O, int I, const real *__restrict__ a, const real *__restrict__ b,
                          real *__restrict__ g) {
    const long r0 = (long)blockIdx.x * GRAD_W_ROWS, r1 = dino_minl(K, r0 + GRAD_W_ROWS);
    const int q = blockIdx.y * DINO_THREADS + threadIdx.x;
    if (q >= O * I || r0 >= r1) return;
    const int o = q / I, i = q % I;
    real acc = 0;
    for (long r = r0; r < r1; r++) acc += a[r * O + o] * b[r * I + i];
    atomicAdd(g + q, acc);
}

/* ---------------------------------------------------------------------------- reductions */
/* Sum and maximum over the block (blockDim.x a multiple of 32); every thread gets the
 * result, the same in every thread (each adds the warp partials in the same order). */
DINO_DEV double block_sum(double v) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); /* part may still be read by a previous call */
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    double s = 0;
    for (int i = 0; i < (int)(blockDim.x / 32); i++) s += part[i];
    return s;
}

DINO_DEV double block_max(double v) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) {
        double u = __shfl_xor_sync(0xffffffffu, v, o);
        v = u > v ? u : v;
    }
    __syncthreads();
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    double s = part[0];
    for (int i = 1; i < (int)(blockDim.x / 32); i++) s = part[i] > s ? part[i] : s;
    return s;
}

/* g (D) += sum over the rows of a (M, D) (prelude_c.h's grad_bias): this block sums rows
 * blockIdx.x * GRAD_BIAS_ROWS .. of column blockIdx.y * 256 + threadIdx.x and adds the sum
 * atomically. Grid (ceil(M / GRAD_BIAS_ROWS), ceil(D / 256)). */
enum { GRAD_BIAS_ROWS = 64 };
DINO_DEV void grad_bias_part(long M, int D, const real *__restrict__ a, real *__restrict__ g) {
    const long r0 = (long)blockIdx.x * GRAD_BIAS_ROWS, r1 = dino_minl(M, r0 + GRAD_BIAS_ROWS);
    const int j = blockIdx.y * DINO_THREADS + threadIdx.x;
    if (j >= D || r0 >= r1) return;
    real s = 0;
    for (long r = r0; r < r1; r++) s += a[r * D + j];
    atomicAdd(g + j, s);
}

/* One sample's squared-error loss term (emit_c.c's emit_loss), one block per sample b:
 * p (R, D) the prediction, d the data, (R, D) or, when transposed, (D, R) (a forward-mode
 * Jacobian [in, out] against data [out, in]). term = ||p - d||^2, divided by ||d||^2 when
 * relative; adds term / n to *total and writes the seed s = 2 w (p - d) / (n den). */
DINO_DEV void loss_squared(long b, int n, int R, int D, int transposed, int relative, const real *__restrict__ p,
                           const real *__restrict__ d, real *__restrict__ s, double w, double *total) {
    const long size = (long)R * D;
    p += b * size, d += b * size, s += b * size;
    double e2 = 0, d2 = 0;
    for (long q = threadIdx.x; q < size; q += blockDim.x) {
        if (transposed) { /* p[i, o] against d[o, i] */
            double dv = d[(q % D) * R + q / D], ev = p[q] - dv;
            e2 += ev * ev, d2 += dv * dv;
        } else {
            double ev = p[q] - d[q];
            e2 += ev * ev, d2 += (double)d[q] * d[q];
        }
    }
    e2 = block_sum(e2), d2 = block_sum(d2);
    double den = relative ? (d2 > 1e-300 ? d2 : 1e-300) : 1;
    if (threadIdx.x == 0) atomicAdd(total, e2 / den / n);
    double coef = 2 * w / (n * den);
    for (long q = threadIdx.x; q < size; q += blockDim.x)
        s[q] = (real)(coef * (p[q] - d[transposed ? (q % D) * R + q / D : q]));
}

/* One sample's cross-entropy term, one block per sample b: p (D) logits, label[b] the class.
 * Adds (logsumexp(p) - p[label]) / n to *total and writes the seed w (softmax(p) - onehot) / n. */
DINO_DEV void loss_cross_entropy(long b, int n, int D, const real *__restrict__ p, const int32_t *__restrict__ label,
                                 real *__restrict__ s, double w, double *total) {
    p += b * D, s += b * D;
    double mx = p[0], z = 0;
    for (int q = threadIdx.x; q < D; q += blockDim.x) mx = p[q] > mx ? p[q] : mx;
    mx = block_max(mx);
    for (int q = threadIdx.x; q < D; q += blockDim.x) z += exp(p[q] - mx);
    z = block_sum(z);
    int lab = label[b];
    if (threadIdx.x == 0) atomicAdd(total, (mx + log(z) - p[lab]) / n);
    double coef = w / n;
    for (int q = threadIdx.x; q < D; q += blockDim.x) s[q] = (real)(coef * (exp(p[q] - mx) / z - (q == lab)));
}

/* A diagnostic term, one block per sample b: adds the sum of b's `size` entries of a, / n, to *total. */
DINO_DEV void monitor_sum(long b, int n, long size, const real *__restrict__ a, double *total) {
    double s = 0;
    for (long q = threadIdx.x; q < size; q += blockDim.x) s += a[b * size + q];
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(total, s / n);
}

/* dopri5's error norm, one block per sample b: adds sum_j (e / (atol + rtol max(|z|, |y|)))^2
 * over b's D entries, / (n D), to *total (the squared RMS over the batch). */
DINO_DEV void err_norm_sum(long b, int n, int D, const real *__restrict__ e, const real *__restrict__ z,
                           const real *__restrict__ y, double atol, double rtol, double *total) {
    double s = 0;
    for (int q = threadIdx.x; q < D; q += blockDim.x) {
        double sc = atol + rtol * fmax(fabs((double)z[b * D + q]), fabs((double)y[b * D + q])), r = e[b * D + q] / sc;
        s += r * r;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(total, s / ((double)n * D));
}

/* One dopri5 attempt's step control for the whole batch (prelude_c.h says how). */
DINO_DEV void dopri5_control(double *terms, const int *s, double t0, double t1, double h0) {
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

/* ---------------------------------------------------------------------------- shape ops */
/* One output element of prelude_c.h's shape operations, for the fused element-wise kernels.
 * A value is (n, R, D) row-major; m = sample * R + row is the row over the batch. */

/* sum over rows m K .. m K + K - 1 of a (M K, D): element (m, j) */
DINO_DEV real sum_rows_at(const real *a, long m, int K, int D, int j) {
    real acc = 0;
    for (int r = 0; r < K; r++) acc += a[(m * K + r) * D + j];
    return acc;
}
/* sum over the D columns of a (M, D): element (m, 0) */
DINO_DEV real sum_cols_at(const real *a, long m, int D) {
    real acc = 0;
    for (int q = 0; q < D; q++) acc += a[m * D + q];
    return acc;
}
/* columns off .. of a (M, Da): element (m, j) */
DINO_DEV real slice_at(const real *a, long m, int Da, int off, int j) { return a[m * Da + off + j]; }
/* a (M, Da) at columns off .. off + Da, zeros elsewhere: element (m, j) */
DINO_DEV real pad_at(const real *a, long m, int Da, int off, int j) {
    return j >= off && j < off + Da ? a[m * Da + j - off] : (real)0;
}

/* The arguments of every generated kernel: the CPU backend's, so a runtime launches any kernel
 * of a program the same way (see the header of the generated file). */
#define DINO_PREDICT_PARAMS                                                                            \
    const real *__restrict__ P, real *__restrict__ G, int n, int nmax, const real *__restrict__ x,     \
        real *__restrict__ y, real *__restrict__ J, const int32_t *__restrict__ label,                 \
        const double *__restrict__ w, double *__restrict__ terms, real *__restrict__ work
#define DINO_TRAIN_PARAMS                                                                              \
    const real *__restrict__ P, real *__restrict__ G, int n, int nmax, const real *__restrict__ x,     \
        const real *__restrict__ y, const real *__restrict__ J, const int32_t *__restrict__ label,     \
        const double *__restrict__ w, double *__restrict__ terms, real *__restrict__ work

/* The same arguments in one struct, for the __noinline__ functions a program's kernels share
 * (equal stages, equal kernel bodies): a call passes a reference to it and a pointer to its
 * numbers in a table, as NVRTC's time grows fast with the arguments of many calls in a kernel.
 * A shared function starts by giving the members it uses the names the kernels use. */
struct DinoPredictArgs {
    const real *P; real *G; int n, nmax; const real *x; real *y, *J; const int32_t *label;
    const double *w; double *terms; real *work;
};
struct DinoTrainArgs {
    const real *P; real *G; int n, nmax; const real *x; const real *y, *J; const int32_t *label;
    const double *w; double *terms; real *work;
};
#define DINO_ARGS {P, G, n, nmax, x, y, J, label, w, terms, work}

/* ---------------------------------------------------------------------------- utility kernels */
/* Launched by the runtime, not by a program; grid-stride loops, so any grid works. Shuffling
 * is the runtime's: it permutes an index array (on the host, or with dino_iota and its own
 * permutation) and gathers each batch with it; the data arrays stay where they are. */

#define DINO_GRID_STRIDE(i, count) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += (long long)gridDim.x * blockDim.x)

/* The scalars of one training step live in device memory, written by dino_set_step before the
 * step, so that a step's launches captured once as a CUDA graph replay with each step's values
 * (the runtime's layout, DinoStepSlot in emit.h): the batch's first position in the epoch's
 * row order, the learning rate, Adam's bias corrections 1 - beta1^t and 1 - beta2^t, SGD's
 * first-step flag, then the loss weights. */
#define DINO_STEP_FIRST 0
#define DINO_STEP_LR 1
#define DINO_STEP_BC1 2
#define DINO_STEP_BC2 3
#define DINO_STEP_FIRST_UPDATE 4
#define DINO_STEP_WEIGHTS 5
#define DINO_STEP_VALUES 16
struct DinoStep { double v[DINO_STEP_VALUES]; };

/* step = s: the values go in as a kernel argument, which the launch copies. One block of
 * DINO_STEP_VALUES threads. */
extern "C" __global__ void dino_set_step(double *__restrict__ step, DinoStep s) {
    if (blockIdx.x == 0 && threadIdx.x < DINO_STEP_VALUES) step[threadIdx.x] = s.v[threadIdx.x];
}

/* dst (n, cols) = rows idx[first .. first + n) of src (N, cols): a batch of x, y or J, with
 * first = step[DINO_STEP_FIRST]. */
extern "C" __global__ void dino_gather(const real *__restrict__ src, long long cols, const long long *__restrict__ idx,
                                       const double *__restrict__ step, int n, real *__restrict__ dst) {
    const long long *rows = idx + (long long)step[DINO_STEP_FIRST];
    DINO_GRID_STRIDE(i, (long long)n * cols) dst[i] = src[rows[i / cols] * cols + i % cols];
}

/* dst (n) = src[idx[first .. first + n)]: a batch of integer labels. */
extern "C" __global__ void dino_gather_label(const int32_t *__restrict__ src, const long long *__restrict__ idx,
                                             const double *__restrict__ step, int n, int32_t *__restrict__ dst) {
    const long long *rows = idx + (long long)step[DINO_STEP_FIRST];
    DINO_GRID_STRIDE(i, (long long)n) dst[i] = src[rows[i]];
}

/* idx (count) = 0, 1, 2, ... */
extern "C" __global__ void dino_iota(long long *__restrict__ idx, long long count) {
    DINO_GRID_STRIDE(i, count) idx[i] = i;
}

/* PyTorch's lerp(self, end, w), rounded as torch does (runtime/optim.c). */
DINO_DEV double dino_lerp(double self, double end, double w) {
    return w < 0.5 ? self + w * (end - self) : end - (end - self) * (1.0 - w);
}

/* One Adam / AdamW step over the flat buffers (runtime/optim.c's adam_step, in double even for
 * f32): bc1 = 1 - beta1^t, bc2 = 1 - beta2^t for step t (computed by the caller, as on the CPU),
 * lr the scheduled rate. Moments m, v in P's precision; the update uses them rounded. */
DINO_DEV void adam_update(int adamw, real *__restrict__ P, const real *__restrict__ G, real *__restrict__ M,
                          real *__restrict__ V, long long count, double lr, double beta1, double beta2, double eps,
                          double decay, double bc1, double bc2) {
    const double step_size = lr / bc1, bc2_sqrt = sqrt(bc2), keep = 1.0 - lr * decay;
    DINO_GRID_STRIDE(i, count) {
        double p = P[i], g = G[i];
        if (adamw) p *= keep;
        else if (decay != 0) g += decay * p;
        M[i] = (real)dino_lerp(M[i], g, 1.0 - beta1);
        V[i] = (real)(V[i] * beta2 + (1.0 - beta2) * g * g);
        double m = M[i], v = V[i];
        double denom = sqrt(v) / bc2_sqrt + eps;
        P[i] = (real)(p - step_size * m / denom);
    }
}

extern "C" __global__ void dino_adam(real *__restrict__ P, const real *__restrict__ G, real *__restrict__ m,
                                     real *__restrict__ v, long long count, const double *__restrict__ step,
                                     double beta1, double beta2, double eps, double decay) {
    adam_update(0, P, G, m, v, count, step[DINO_STEP_LR], beta1, beta2, eps, decay, step[DINO_STEP_BC1],
                step[DINO_STEP_BC2]);
}

extern "C" __global__ void dino_adamw(real *__restrict__ P, const real *__restrict__ G, real *__restrict__ m,
                                      real *__restrict__ v, long long count, const double *__restrict__ step,
                                      double beta1, double beta2, double eps, double decay) {
    adam_update(1, P, G, m, v, count, step[DINO_STEP_LR], beta1, beta2, eps, decay, step[DINO_STEP_BC1],
                step[DINO_STEP_BC2]);
}

/* One SGD step (runtime/optim.c's sgd_step): g += decay p when decay != 0; with momentum != 0,
 * buf = g on the first step (step[DINO_STEP_FIRST_UPDATE] != 0), else momentum buf + g, and
 * p -= lr buf; without momentum p -= lr g (buf may then be NULL). */
extern "C" __global__ void dino_sgd(real *__restrict__ P, const real *__restrict__ G, real *__restrict__ buf,
                                    long long count, const double *__restrict__ step, double decay, double momentum) {
    const double lr = step[DINO_STEP_LR];
    const int first = step[DINO_STEP_FIRST_UPDATE] != 0;
    DINO_GRID_STRIDE(i, count) {
        double p = P[i], g = G[i];
        if (decay != 0) g += decay * p;
        if (momentum != 0) {
            buf[i] = (real)(first ? g : momentum * buf[i] + g);
            g = buf[i];
        }
        P[i] = (real)(p - lr * g);
    }
}

/* acc[0] += n * sum_i w[i] terms[i]: the batch's weighted loss, summed over an epoch on the GPU
 * so that the host reads it once per epoch. One thread. */
extern "C" __global__ void dino_accumulate_loss(const double *__restrict__ terms, const double *__restrict__ w,
                                                int n_terms, int n_monitors, int n, double *__restrict__ acc) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double loss = 0;
    for (int i = 0; i < n_terms; i++) loss += w[i] * terms[i];
    acc[0] += loss * n;
    for (int i = 0; i < n_monitors; i++) acc[1 + i] += terms[n_terms + i] * n;
}
