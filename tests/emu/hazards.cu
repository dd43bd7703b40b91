/* hazards.cu - deliberately broken kernels, one per hazard mode of tests/cuda_emu.hpp: each gives
 * the right answer in the emulation's normal mode (threads and blocks in order, shared memory
 * kept from block to block) and a wrong one, or a launch error, in its mode. test_cuda_emu
 * --hazards runs them to prove that each mode catches its hazard (issue 19).
 *
 * Every kernel: (out, in, stamp), blocks of 64 threads; `stamp` differs between runs, so that a
 * value left by an earlier run cannot pass for this run's. */

/* random, reverse: no barrier between writing s and reading a neighbour's entry. In order,
 * thread t - 1 has run to its end before thread t starts, so it works; out[t] = stamp + t - 1. */
extern "C" __global__ void missing_barrier(float *out, const float *in, int stamp) {
    __shared__ float s[64];
    const int t = threadIdx.x;
    (void)in;
    s[t] = (float)(stamp + t);
    /* __syncthreads() belongs here */
    out[blockIdx.x * 64 + t] = t > 0 ? s[t - 1] : (float)(stamp - 1);
}

/* blocks: block b reads what block b - 1 wrote, without any synchronisation between blocks
 * (none exists within a launch). In order out[b] = stamp + b. */
extern "C" __global__ void block_chain(float *out, const float *in, int stamp) {
    (void)in;
    if (threadIdx.x == 0) out[blockIdx.x] = blockIdx.x == 0 ? (float)stamp : out[blockIdx.x - 1] + 1;
}

/* blocks: a running total kept in shared memory from one block to the next, as if blocks
 * shared it. In order out[b] = stamp + 0 + 1 + ... + b. */
extern "C" __global__ void shared_carry(float *out, const float *in, int stamp) {
    __shared__ float total;
    (void)in;
    if (blockIdx.x == 0 && threadIdx.x == 0) total = (float)stamp;
    __syncthreads();
    if (threadIdx.x == 0 && blockIdx.x > 0) total += (float)blockIdx.x;
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = total;
}

/* poison: a histogram in shared memory that is never zeroed at the start (it is cleared at the
 * end, so in the emulation's normal mode, where static memory starts at zero and persists, it
 * works). out[t] = how many of the block's 64 inputs equal t. */
extern "C" __global__ void unzeroed_shared(float *out, const float *in, int stamp) {
    __shared__ float hist[64];
    const int t = threadIdx.x;
    (void)stamp;
    atomicAdd(&hist[(int)in[blockIdx.x * 64 + t] & 63], 1.0f);
    __syncthreads();
    out[blockIdx.x * 64 + t] = hist[t];
    __syncthreads();
    hist[t] = 0;
}

/* divergence: half the block skips a barrier that the other half waits at. out[t] = stamp + t. */
extern "C" __global__ void divergent_barrier(float *out, const float *in, int stamp) {
    (void)in;
    if (threadIdx.x < 32) __syncthreads();
    out[blockIdx.x * 64 + threadIdx.x] = (float)(stamp + threadIdx.x);
}
