// The one door to threads. Every parallel loop in the core goes through parallel_for, which
// runs serially when the work is small or when it is already inside a parallel region.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>

namespace pybert {

// Threads the calling thread may use for the compute it starts. Set per call by the model
// (ThreadBudget) so that each model's num_threads holds even when several Python threads
// call into the core at once.
int thread_budget();
void set_default_num_threads(int n);  // process-wide default; <= 0 means "all usable CPUs"
int default_num_threads();
int usable_cpus();  // sched_getaffinity and the cgroup CPU quota, not the host's core count

// The threads one compute call runs with, taken from a process-wide pool of usable_cpus()
// compute slots so that concurrent calls never oversubscribe the cores:
//   - a call runs with exactly n threads (<= 0: the process default), capped at usable_cpus();
//   - it waits, without the GIL and in arrival order, until n slots are free, and gives them
//     back when the budget ends;
//   - a budget opened inside another on the same thread takes no new slots (no self-deadlock).
// So the OpenMP threads of all calls together stay <= usable_cpus(), and a call's result never
// depends on what other threads are doing (the split of work depends on n alone).
class ThreadBudget {
 public:
  explicit ThreadBudget(int n);
  ~ThreadBudget();
  ThreadBudget(const ThreadBudget&) = delete;
  ThreadBudget& operator=(const ThreadBudget&) = delete;

  int threads() const { return threads_; }

 private:
  int previous_;
  int threads_ = 0;
  bool owns_slots_ = false;
};

int compute_slots_in_use();  // slots held by running calls (tests and benchmarks)

// The split parallel_for makes of n items over up to max_threads threads: thread t gets items
// [t * chunk, (t + 1) * chunk) of the range.
inline int64_t parallel_chunk(int64_t n, int64_t grain, int64_t max_threads) {
  const int64_t n_threads = std::min(max_threads, (n + grain - 1) / grain);
  return n_threads > 1 ? (n + n_threads - 1) / n_threads : n;
}

// Calls fn(b, e) on disjoint chunks covering [begin, end), at most one chunk per thread; no
// chunk is smaller than `grain` items unless the range itself is. An exception thrown by a
// worker is rethrown on the calling thread after the loop.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunk = parallel_chunk(n, grain, omp_in_parallel() ? 1 : thread_budget());
  const int64_t n_threads = (n + chunk - 1) / chunk;
  if (n_threads <= 1) {
    fn(begin, end);
    return;
  }
  std::exception_ptr error = nullptr;
#pragma omp parallel num_threads(static_cast<int>(n_threads))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t b = begin + t * chunk;
    const int64_t e = std::min(end, b + chunk);
    if (b < e) {
      try {
        fn(b, e);
      } catch (...) {
#pragma omp critical(pybert_parallel_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace pybert
