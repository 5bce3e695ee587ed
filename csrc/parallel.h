// The one door to threads. Every parallel loop in the core goes through parallel_for, which
// runs serially when the work is small or when it is already inside a parallel loop.
//
// The threads are pybert's own (no OpenMP). A compute call opens a ThreadBudget: it takes its
// compute slots, then leases num_threads - 1 workers from a process-wide pool and wakes them at
// once, so their wake-up overlaps the caller's serial start (input checks, packing the batch).
// From then until the budget closes the workers spin, watching for the call's next parallel
// step: the ~40 steps of one forward pay no wake-up each (a wait longer than a forward's serial
// stretches, 1 ms, means the host is oversubscribed: then the waiting thread sleeps and leaves
// the CPU to the one it waits for). When the budget closes they park (block in the kernel, no
// spinning) after a short grace (PYBERT_SPIN_US, default 300 us) that bridges back-to-back calls.
// PYBERT_WAIT_POLICY=active (or OMP_WAIT_POLICY=ACTIVE) keeps workers spinning forever
// instead; =passive (or OMP_WAIT_POLICY=PASSIVE) parks them after a call with no grace.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

namespace pybert {

// Threads the calling thread may use for the compute it starts. Set per call by the model
// (ThreadBudget) so that each model's num_threads holds even when several Python threads
// call into the core at once.
int thread_budget();
void set_default_num_threads(int n);  // process-wide default; <= 0 means "all usable CPUs"
int default_num_threads();
int usable_cpus();  // sched_getaffinity and the cgroup CPU quota, not the host's core count

class Team;  // the threads of one call: its caller + the leased workers (parallel.cc)

// The threads one compute call runs with, taken from a process-wide pool of usable_cpus()
// compute slots so that concurrent calls never oversubscribe the cores:
//   - a call runs with exactly n threads (<= 0: the process default), capped at usable_cpus():
//     the calling thread and n - 1 pool workers, leased to it until the budget ends;
//   - it waits, without the GIL and in arrival order, until n slots are free, and gives them
//     back when the budget ends;
//   - a budget opened inside another on the same thread takes no new slots (no self-deadlock).
// So the compute threads of all calls together stay <= usable_cpus(), and a call's result never
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
  std::shared_ptr<Team> team_;  // set when this budget leased the workers
};

int compute_slots_in_use();  // slots held by running calls (tests and benchmarks)
int peak_compute_slots(bool reset);  // the most held at once since the last reset (tests)
int pool_workers();  // worker threads the pool has started, parked or leased (tests)

// The split parallel_for makes of n items over up to max_threads threads: chunk t holds items
// [t * chunk, (t + 1) * chunk) of the range.
inline int64_t parallel_chunk(int64_t n, int64_t grain, int64_t max_threads) {
  const int64_t n_threads = std::min(max_threads, (n + grain - 1) / grain);
  return n_threads > 1 ? (n + n_threads - 1) / n_threads : n;
}

// Which chunk of the current parallel_for the calling thread is running (0 outside one): the
// chunk a thread runs in one loop is, unless a thread was late, the same t in the next.
int64_t parallel_chunk_index();

namespace detail {
using ChunkFn = void (*)(const void* fn, int64_t b, int64_t e);
bool in_parallel();  // inside a chunk of a parallel_for, on any thread
// Runs fn's n_chunks chunks of [begin, end) on the calling thread's team (opening a budget of
// the default size when the thread has none): chunk t on thread t unless that thread is late,
// then on whichever team thread is free. Rethrows the first exception of any chunk.
void run_chunks(ChunkFn call, const void* fn, int64_t begin, int64_t end, int64_t chunk,
                int64_t n_chunks);
}  // namespace detail

// Calls fn(b, e) on disjoint chunks covering [begin, end), at most one chunk per thread of the
// budget; no chunk is smaller than `grain` items unless the range itself is. The chunks depend
// on the range, grain and budget only (never on which thread runs one), so results do not
// depend on timing. An exception thrown in a chunk is rethrown on the calling thread after
// the loop.
template <typename Fn>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const Fn& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunk = parallel_chunk(n, grain, detail::in_parallel() ? 1 : thread_budget());
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_chunks <= 1) {
    fn(begin, end);
    return;
  }
  detail::run_chunks(
      [](const void* f, int64_t b, int64_t e) { (*static_cast<const Fn*>(f))(b, e); }, &fn,
      begin, end, chunk, n_chunks);
}

}  // namespace pybert
