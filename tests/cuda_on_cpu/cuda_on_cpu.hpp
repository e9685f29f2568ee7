// Runs CUDA kernels' source on the CPU, so that the kernels of third_party/caffe/patches-cuda/ are checked
// where no card is at hand (tests/test_fused_kernels.py). A kernel is compiled as a plain C++ function; a launch
// runs its blocks one after another, and a block's threads as fibers (ucontext) that switch only at
// __syncthreads(), so each thread keeps its own locals and `__shared__` arrays (static here) are the block's.
//
// What it checks beyond the arithmetic: the threads of a block run in the order the caller picks (ascending,
// descending or shuffled anew at every barrier), so a kernel that reads shared memory another thread may still
// write without a barrier between them gives different results under different orders; a barrier that some
// threads of a block reach and others skip (undefined on a card) stops the launch with an error.
// What it cannot check: warp-level behaviour, memory coalescing, speed, anything the card's compiler does.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cuda_on_cpu {

inline dim3 threadIdx(0, 0, 0), blockIdx(0, 0, 0), blockDim, gridDim;

enum class Order { ascending, descending, shuffled };

struct Block {
  ucontext_t scheduler;
  std::vector<ucontext_t> threads;
  std::vector<int> state;  // 0: runnable, 1: waiting at a barrier, 2: returned
  unsigned current = 0;
  void (*body)(void*) = nullptr;
  void* closure = nullptr;
};

inline Block* running = nullptr;
constexpr size_t kStackBytes = 256 * 1024;

inline void thread_main() {
  running->body(running->closure);
  running->state[running->current] = 2;  // returns to uc_link: the scheduler
}

inline void syncthreads() {
  Block* b = running;
  b->state[b->current] = 1;
  swapcontext(&b->threads[b->current], &b->scheduler);
}

[[noreturn]] inline void fail(const char* what, unsigned block) {
  std::fprintf(stderr, "cuda_on_cpu: %s (block %u)\n", what, block);
  std::exit(3);
}

// Runs kernel() as grid.x blocks of block.x threads (one-dimensional launches, as Caffe's).
template <typename Kernel>
void launch(dim3 grid, dim3 block, Order order, unsigned seed, Kernel kernel) {
  if (grid.x == 0 || block.x == 0 || block.x > 1024 || grid.y != 1 || grid.z != 1 || block.y != 1 ||
      block.z != 1) {
    fail("invalid launch configuration", 0);
  }
  static std::vector<std::vector<char>> stacks;
  if (stacks.size() < block.x) stacks.resize(block.x, std::vector<char>(kStackBytes));
  std::mt19937 random(seed);
  gridDim = grid;
  blockDim = block;
  Block b;
  b.threads.resize(block.x);
  b.state.resize(block.x);
  b.body = [](void* k) { (*static_cast<Kernel*>(k))(); };
  b.closure = &kernel;
  std::vector<unsigned> turn(block.x);
  for (unsigned g = 0; g < grid.x; ++g) {
    blockIdx = dim3(g, 0, 0);
    for (unsigned t = 0; t < block.x; ++t) {
      getcontext(&b.threads[t]);
      b.threads[t].uc_stack.ss_sp = stacks[t].data();
      b.threads[t].uc_stack.ss_size = kStackBytes;
      b.threads[t].uc_link = &b.scheduler;
      makecontext(&b.threads[t], thread_main, 0);
      b.state[t] = 0;
    }
    running = &b;
    for (;;) {  // one round: every runnable thread runs to its next barrier or its end
      std::iota(turn.begin(), turn.end(), 0u);
      if (order == Order::descending) std::reverse(turn.begin(), turn.end());
      if (order == Order::shuffled) std::shuffle(turn.begin(), turn.end(), random);
      for (unsigned t : turn) {
        if (b.state[t] != 0) continue;
        b.current = t;
        threadIdx = dim3(t, 0, 0);
        swapcontext(&b.scheduler, &b.threads[t]);
      }
      const auto waiting = std::count(b.state.begin(), b.state.end(), 1);
      if (waiting == 0) break;
      if (waiting != static_cast<long>(block.x)) {
        fail("__syncthreads() reached by some of the block's threads while others returned", g);
      }
      std::fill(b.state.begin(), b.state.end(), 0);
    }
    running = nullptr;
  }
}

}  // namespace cuda_on_cpu

using cuda_on_cpu::blockDim;
using cuda_on_cpu::blockIdx;
using cuda_on_cpu::gridDim;
using cuda_on_cpu::threadIdx;

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __syncthreads() cuda_on_cpu::syncthreads()

namespace caffe {
// As Caffe's include/caffe/util/device_alternate.hpp (the test checks the installed header says the same).
const int CAFFE_CUDA_NUM_THREADS = 512;
inline int CAFFE_GET_BLOCKS(const int N) { return (N + CAFFE_CUDA_NUM_THREADS - 1) / CAFFE_CUDA_NUM_THREADS; }
}  // namespace caffe

#define CUDA_KERNEL_LOOP(i, n) \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)
