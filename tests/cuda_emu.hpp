/* cuda_emu.hpp - runs generated CUDA on the CPU, for tests only (tests/test_cuda_emu.c,
 * tests/fake_cuda).
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
 * shuffles, speed.
 *
 * Hazard modes make it hostile where a GPU may be: DINO_EMU_HAZARDS is a comma-separated list of
 *   random      the threads of a block run in a random order between barriers (a new order each
 *               round; DINO_EMU_SEED seeds it, default 1)
 *   reverse     ... in reverse order (the last thread first)
 *   blocks      blocks run last to first, EMU_GROUP of them at a time interleaved barrier by
 *               barrier, each with its own shared memory (zeroed, or poisoned, when it starts)
 *   poison      shared memory filled with 0xff bytes (NaN as float and double) when a block starts
 *   divergence  a thread that ends, or waits at another __syncthreads, while a thread of its block
 *               waits at a barrier is an error: the launch fails (emu_error() says where)
 * Normal mode (unset or empty) is what it always was: threads in order, blocks in order, shared
 * memory kept from one block to the next. A correct kernel gives the same results in every mode,
 * bit for bit except where blocks add into the same place atomically (the order of those sums
 * changes in `blocks`).
 *
 * Shared memory is one ELF section, emu_shared, so the modes can save, swap and poison it:
 * __shared__ puts a variable there. g++ needs -fno-weak for that (else it puts the statics of
 * inline functions in COMDAT sections that conflict with the rest) and ignores the section of a
 * function-local __shared__ array in a template (the prelude has none: its GEMM scratch is at
 * namespace scope). emu_shared_bytes() says how large the section is. */
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
#define __shared__ __attribute__((section("emu_shared"))) static
extern "C" __attribute__((weak, visibility("hidden"))) char __start_emu_shared[], __stop_emu_shared[];

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
 * (a launch switches 256 fibers at every barrier). In mode `blocks` EMU_GROUP blocks are live at
 * once, block slot s on fibers s * blockDim.x ... */

enum { EMU_MAX_THREADS = 1024, EMU_GROUP = 3, EMU_MAX_FIBERS = EMU_MAX_THREADS * EMU_GROUP, EMU_STACK = 128 * 1024 };
enum { EMU_RANDOM = 1, EMU_REVERSE = 2, EMU_BLOCKS = 4, EMU_POISON = 8, EMU_DIVERGENCE = 16 };

static struct {
    jmp_buf scheduler, fiber[EMU_MAX_FIBERS];
    char *stacks;
    unsigned n; /* fibers made (on stacks) */
    unsigned current;
    char done[EMU_MAX_FIBERS];
    int site[EMU_MAX_FIBERS]; /* the line of the __syncthreads a fiber waits at */
    void (*thunk)(void *);
    void *ctx;
    unsigned block; /* threads per block of this launch */
    emu_dim3 slot_block[EMU_GROUP];
    unsigned modes;
    unsigned long long seed;
    char *slot_shared[EMU_GROUP]; /* mode blocks: each live block's shared memory */
    int shared_owner;             /* the slot whose shared memory is in the section now */
    unsigned order[EMU_MAX_THREADS];
    char error[512];
} emu;

static double emu_exchange[EMU_MAX_FIBERS];

#define __syncthreads() emu_syncthreads(__LINE__)
static inline void emu_syncthreads(int site) {
    emu.site[emu.current] = site;
    if (!_setjmp(emu.fiber[emu.current])) _longjmp(emu.scheduler, 1);
}

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void)mask;
    unsigned t = threadIdx.x, base = emu.current - t;
    __syncthreads();
    emu_exchange[emu.current] = (double)v;
    __syncthreads();
    T r = (T)emu_exchange[base + ((t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask))];
    __syncthreads();
    return r;
}

/* The fast intrinsics of `math fast` (compiler/activations_fast.def): __expf as the GPU computes
 * it, 2^(x log2 e) with the product rounded to float (the larger part of its error); __fdividef
 * returns 0 for a divisor beyond 2^126, as the GPU's; __sinf and __cosf are sinf and cosf (the
 * GPU's are within about 2^-21 absolute on [-pi, pi]). */
static inline float emu_expf(float x) { return exp2f(x * 1.4426950408889634f); }
static inline float emu_fdividef(float a, float b) { return fabsf(b) > 0x1p126f && !isinf(a) ? 0.0f * a : a / b; }
#define __expf emu_expf /* (glibc declares its own __expf, __sinf, __cosf) */
#define __fdividef emu_fdividef
#define __sinf sinf
#define __cosf cosf

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

/* ---------------------------------------------------------------------------- hazard modes */

static unsigned emu_read_modes(void) {
    static const char *const names[] = {"random", "reverse", "blocks", "poison", "divergence"};
    const char *v = getenv("DINO_EMU_HAZARDS");
    unsigned m = 0;
    for (const char *p = v ? v : ""; *p;) {
        size_t len = strcspn(p, ",");
        for (unsigned i = 0; i < 5; i++)
            if (len == strlen(names[i]) && strncmp(p, names[i], len) == 0) m |= 1u << i;
        p += len + (p[len] == ',');
    }
    return m;
}

static size_t emu_shared_size(void) {
    return __start_emu_shared && __stop_emu_shared ? (size_t)(__stop_emu_shared - __start_emu_shared) : 0;
}
extern "C" size_t emu_shared_bytes(void) { return emu_shared_size(); }
extern "C" const char *emu_error(void) { return emu.error; }

/* The shared memory of slot s in the section (mode blocks: each slot has its own). */
static void emu_use_shared(int s) {
    size_t bytes = emu_shared_size();
    if (!(emu.modes & EMU_BLOCKS) || emu.shared_owner == s || !bytes) return;
    if (emu.shared_owner >= 0) memcpy(emu.slot_shared[emu.shared_owner], __start_emu_shared, bytes);
    memcpy(__start_emu_shared, emu.slot_shared[s], bytes);
    emu.shared_owner = s;
}

/* A block starts in slot s: its shared memory fresh (blocks), poisoned (poison), or as the last
 * block left it (normal). */
static void emu_start_shared(int s) {
    size_t bytes = emu_shared_size();
    if (!bytes) return;
    if (emu.modes & EMU_BLOCKS) {
        memset(emu.slot_shared[s], emu.modes & EMU_POISON ? 0xff : 0, bytes);
        if (emu.shared_owner == s) emu.shared_owner = -1; /* the section's copy is stale now */
    } else if (emu.modes & EMU_POISON) {
        memset(__start_emu_shared, 0xff, bytes);
    }
}

static unsigned emu_random(void) {
    emu.seed ^= emu.seed << 13, emu.seed ^= emu.seed >> 7, emu.seed ^= emu.seed << 17;
    return (unsigned)(emu.seed >> 11);
}

/* The order of the threads of a block for one round. */
static void emu_thread_order(unsigned block) {
    for (unsigned t = 0; t < block; t++) emu.order[t] = emu.modes & EMU_REVERSE ? block - 1 - t : t;
    if (emu.modes & EMU_RANDOM)
        for (unsigned t = block - 1; t > 0; t--) {
            unsigned j = emu_random() % (t + 1), k = emu.order[t];
            emu.order[t] = emu.order[j], emu.order[j] = k;
        }
}

/* Mode divergence, after a round of slot s: every live thread waits at the same barrier, and
 * none has ended while another waits. 0, or -1 with emu.error set. */
static int emu_check_barrier(int s, unsigned block) {
    const unsigned *b = (const unsigned *)&emu.slot_block[s];
    int waiting = -1, ended = -1;
    for (unsigned t = 0; t < block; t++) {
        unsigned f = s * block + t;
        if (emu.done[f]) {
            if (ended < 0) ended = (int)t;
        } else if (waiting < 0) {
            waiting = (int)t;
        } else if (emu.site[f] != emu.site[s * block + waiting]) {
            snprintf(emu.error, sizeof emu.error,
                     "barrier divergence in block (%u, %u, %u): thread %d waits at the __syncthreads of line %d, "
                     "thread %u at that of line %d",
                     b[0], b[1], b[2], waiting, emu.site[s * block + waiting], t, emu.site[f]);
            return -1;
        }
    }
    if (waiting >= 0 && ended >= 0) {
        snprintf(emu.error, sizeof emu.error,
                 "barrier divergence in block (%u, %u, %u): thread %d ended without the __syncthreads of line %d "
                 "that thread %d waits at",
                 b[0], b[1], b[2], ended, emu.site[s * block + waiting], waiting);
        return -1;
    }
    return 0;
}

/* Runs the blocks of slots 0 .. slots - 1 to their ends, interleaved barrier by barrier. */
static int emu_run_group(int slots, unsigned block) {
    for (unsigned f = 0; f < (unsigned)slots * block; f++) emu.done[f] = 0, emu.site[f] = 0;
    for (int s = 0; s < slots; s++) emu_start_shared(s);
    for (int round = 0, live = 1; live; round++) {
        live = 0;
        for (int k = 0; k < slots; k++) {
            int s = round % 2 ? slots - 1 - k : k;
            emu_use_shared(s);
            blockIdx = emu.slot_block[s];
            emu_thread_order(block);
            int slot_live = 0;
            for (unsigned i = 0; i < block; i++) {
                unsigned t = emu.order[i], f = s * block + t;
                if (emu.done[f]) continue;
                emu.current = f;
                threadIdx = emu_dim3{t, 0, 0};
                if (!_setjmp(emu.scheduler)) _longjmp(emu.fiber[f], 1);
                slot_live += !emu.done[f];
            }
            if (slot_live && (emu.modes & EMU_DIVERGENCE) && emu_check_barrier(s, block)) return -1;
            live += slot_live;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------- the launcher */

/* Runs thunk(ctx) as a kernel launch: grid (gx, gy, gz) of blocks of `block` threads, blocks
 * in order (or as the hazard modes say). Returns 0, or -1 for a bad launch or a hazard found
 * (emu_error() says which). */
extern "C" int emu_launch(void (*thunk)(void *), void *ctx, unsigned gx, unsigned gy, unsigned gz, unsigned block) {
    emu.error[0] = 0;
    if (!gx || !gy || !gz || !block || block > EMU_MAX_THREADS) {
        snprintf(emu.error, sizeof emu.error, "bad launch: grid (%u, %u, %u), block %u", gx, gy, gz, block);
        return -1;
    }
    emu.modes = emu_read_modes();
    if (!emu.seed) {
        const char *v = getenv("DINO_EMU_SEED");
        emu.seed = v && *v ? strtoull(v, NULL, 10) * 2654435761ull + 1 : 1;
    }
    int group = emu.modes & EMU_BLOCKS ? EMU_GROUP : 1;
    if (emu.n < block * group && emu_make_fibers(block * group)) return -1;
    size_t bytes = emu_shared_size();
    for (int s = 0; s < group && (emu.modes & EMU_BLOCKS) && bytes; s++)
        if (!emu.slot_shared[s] && !(emu.slot_shared[s] = (char *)malloc(bytes))) return -1;
    emu.shared_owner = -1;
    gridDim = emu_dim3{gx, gy, gz};
    blockDim = emu_dim3{block, 1, 1};
    emu.block = block;
    emu.thunk = thunk;
    emu.ctx = ctx;
    unsigned long long count = (unsigned long long)gx * gy * gz;
    for (unsigned long long i = 0; i < count;) {
        int slots = 0;
        for (; slots < group && i < count; slots++, i++) {
            unsigned long long b = emu.modes & EMU_BLOCKS ? count - 1 - i : i;
            emu.slot_block[slots] = emu_dim3{(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / gx / gy)};
        }
        if (emu_run_group(slots, block)) {
            emu_make_fibers(emu.n); /* the fibers are mid-kernel: fresh ones for the next launch */
            return -1;
        }
    }
    if ((emu.modes & EMU_BLOCKS) && emu.shared_owner >= 0) emu.shared_owner = -1;
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
    for (int s = 0; s < EMU_GROUP; s++) free(emu.slot_shared[s]), emu.slot_shared[s] = NULL;
}
