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

class ThreadBudget {
 public:
  explicit ThreadBudget(int n);
  ~ThreadBudget();
  ThreadBudget(const ThreadBudget&) = delete;
  ThreadBudget& operator=(const ThreadBudget&) = delete;

 private:
  int previous_;
};

// Calls fn(b, e) on disjoint chunks covering [begin, end), at most one chunk per thread; no
// chunk is smaller than `grain` items unless the range itself is. An exception thrown by a
// worker is rethrown on the calling thread after the loop.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_threads = omp_in_parallel() ? 1 : thread_budget();
  const int64_t n_threads = std::min(max_threads, (n + grain - 1) / grain);
  if (n_threads <= 1) {
    fn(begin, end);
    return;
  }
  std::exception_ptr error = nullptr;
#pragma omp parallel num_threads(static_cast<int>(n_threads))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t chunk = (n + n_threads - 1) / n_threads;
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
