/* cuda_emu.hpp - runs generated CUDA on the CPU, for tests only (tests/test_cuda_emu.c).
 *
 * Force-included (`c++ -include cuda_emu.hpp model.cu`) before a generated .cu, it defines the
 * CUDA keywords and built-ins that file uses, so the host C++ compiler builds it into a shared
 * object whose extern "C" kernels the test runs with emu_launch. Each block runs as
 * blockDim.x fibers on one OS thread, blocks one after another, so __shared__ variables
 * (static here) are shared by exactly one block's threads, __syncthreads is a barrier, and
 * __shfl_xor_sync exchanges through a block-wide buffer (every thread of the block must call
 * it, which the prelude's reductions do).
 *
 * This checks what the kernels compute: indexing, tiling, edges, fusion, buffer reuse, the
 * reductions. It cannot check what only a GPU shows: the memory model, warp scheduling, real
 * shuffles, speed. */
/* _longjmp between the fibers' stacks: glibc's fortified longjmp would take that for a bug */
#undef _FORTIFY_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(n)
#define __shared__ static

struct emu_dim3 {
    unsigned x, y, z;
};
static emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

/* ---------------------------------------------------------------------------- the threads of a block */
/* Each CUDA thread of a block is a fiber on the one OS thread that launches. The scheduler runs
 * every live fiber in turn up to its next __syncthreads (or its end), and starts the next round
 * only when all have, which is exactly a block barrier. A fiber is made once (makecontext, one
 * swapcontext to start it) and then lives on: it runs the kernel for one block after another,
 * and every switch is a _setjmp/_longjmp pair, which, unlike swapcontext, makes no system call
 * (a launch switches 256 fibers at every barrier). */

enum { EMU_MAX_THREADS = 1024, EMU_STACK = 128 * 1024 };

static struct {
    jmp_buf scheduler, fiber[EMU_MAX_THREADS];
    char *stacks;
    unsigned n; /* fibers made (on stacks) */
    unsigned current;
    char done[EMU_MAX_THREADS];
    void (*thunk)(void *);
    void *ctx;
} emu;

static double emu_exchange[EMU_MAX_THREADS];

static inline void __syncthreads() {
    if (!_setjmp(emu.fiber[emu.current])) _longjmp(emu.scheduler, 1);
}

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void)mask;
    unsigned t = threadIdx.x;
    __syncthreads();
    emu_exchange[t] = (double)v;
    __syncthreads();
    T r = (T)emu_exchange[(t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask)];
    __syncthreads();
    return r;
}

/* One OS thread runs everything, so a plain add is atomic. */
template <class T> static inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}

/* A fiber: parked until the scheduler resumes it, then the kernel for one block, again and again. */
static void emu_fiber_main(int t) {
    for (;;) {
        if (!_setjmp(emu.fiber[t])) _longjmp(emu.scheduler, 1);
        emu.thunk(emu.ctx);
        emu.done[t] = 1;
    }
}

/* Makes fibers 0 .. count - 1 on fresh stacks (dropping any older ones) and parks them. */
static int emu_make_fibers(unsigned count) {
    free(emu.stacks);
    emu.stacks = (char *)malloc((size_t)count * EMU_STACK);
    emu.n = 0;
    if (!emu.stacks) return -1;
    for (unsigned t = 0; t < count; t++) {
        ucontext_t start, here;
        getcontext(&start);
        start.uc_stack.ss_sp = emu.stacks + (size_t)t * EMU_STACK;
        start.uc_stack.ss_size = EMU_STACK;
        start.uc_link = NULL; /* a fiber never returns */
        makecontext(&start, (void (*)())emu_fiber_main, 1, (int)t);
        if (!_setjmp(emu.scheduler)) swapcontext(&here, &start); /* it parks and jumps back */
    }
    emu.n = count;
    return 0;
}

static void emu_run_block(unsigned block) {
    for (unsigned t = 0; t < block; t++) emu.done[t] = 0;
    for (unsigned live = block; live;) {
        live = 0;
        for (unsigned t = 0; t < block; t++) {
            if (emu.done[t]) continue;
            emu.current = t;
            threadIdx = emu_dim3{t, 0, 0};
            if (!_setjmp(emu.scheduler)) _longjmp(emu.fiber[t], 1);
            live += !emu.done[t];
        }
    }
}

/* ---------------------------------------------------------------------------- the launcher */

/* Runs thunk(ctx) as a kernel launch: grid (gx, gy, gz) of blocks of `block` threads, blocks
 * in order. Returns 0, or -1 for a bad launch. */
extern "C" int emu_launch(void (*thunk)(void *), void *ctx, unsigned gx, unsigned gy, unsigned gz, unsigned block) {
    if (!gx || !gy || !gz || !block || block > EMU_MAX_THREADS) return -1;
    if (emu.n < block && emu_make_fibers(block)) return -1;
    gridDim = emu_dim3{gx, gy, gz};
    blockDim = emu_dim3{block, 1, 1};
    emu.thunk = thunk;
    emu.ctx = ctx;
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                blockIdx = emu_dim3{x, y, z};
                emu_run_block(block);
            }
    return 0;
}

/* Calls kernel f with the arguments of a cuLaunchKernel: args[i] points to the i-th argument,
 * read with the type of f's i-th parameter (tests/fake_cuda/fake_cuda.c writes a thunk per
 * kernel that does this). */
template <class... A, size_t... I> static void emu_invoke_at(void (*f)(A...), void **args, std::index_sequence<I...>) {
    f(*(typename std::remove_reference<A>::type *)args[I]...);
}
template <class... A> static void emu_invoke(void (*f)(A...), void **args) {
    emu_invoke_at(f, args, std::index_sequence_for<A...>{});
}

/* Copies the arguments of a cuLaunchKernel for f into buf (at most `room` bytes) and points
 * out[i] at the i-th copy (out has room for max_args), as the driver does when a launch is
 * captured into a graph. Returns the bytes used, or 0 when they don't fit. */
template <class... A>
static size_t emu_pack(void (*)(A...), void **args, char *buf, size_t room, void **out, size_t max_args) {
    static const size_t sizes[] = {sizeof(typename std::remove_reference<A>::type)..., 0};
    if (sizeof...(A) > max_args) return 0;
    size_t off = 0;
    for (size_t i = 0; i < sizeof...(A); i++) {
        if (off + sizes[i] > room) return 0;
        memcpy(buf + off, args[i], sizes[i]);
        out[i] = buf + off;
        off += (sizes[i] + 15) / 16 * 16;
    }
    return off ? off : 1;
}

/* Frees the fiber stacks (call before dlclose). */
extern "C" void emu_shutdown(void) {
    free(emu.stacks);
    emu.stacks = NULL;
    emu.n = 0;
}
