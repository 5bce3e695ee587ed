#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pybert {
namespace {

// One pause of a spin-wait: tells the core (and an SMT sibling) that this thread is waiting.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

thread_local int t_budget = 0;          // 0: use the process default
thread_local Team* t_team = nullptr;    // the team of the budget this thread opened, if any
thread_local bool t_in_parallel = false;
thread_local int64_t t_chunk = 0;
std::atomic<int> g_default_threads{0};  // 0: usable_cpus()

#if defined(__linux__)
// CPU quota from cgroup v2 (cpu.max: "<quota> <period>" or "max <period>") or v1.
double cgroup_cpu_limit() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (v2 >> quota >> period) {
    if (quota != "max" && period > 0) return std::stod(quota) / period;
    return 0;
  }
  std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double qv = 0, pv = 0;
  if ((q >> qv) && (p >> pv) && qv > 0 && pv > 0) return qv / pv;
  return 0;
}
#endif

// What idle workers do (PYBERT_WAIT_POLICY, else OMP_WAIT_POLICY; read once):
//   call (default): spin through a call, then PYBERT_SPIN_US (default 300) more, then park;
//   active: never park (a core each, forever); passive: park as soon as a call is done.
struct WaitPolicy {
  bool never_park = false;
  std::chrono::microseconds grace{300};
  // Within a call, a member waits this long with no chunk running (the caller in a serial
  // stretch, or a member preempted in its chunk) before it sleeps: longer than a forward's
  // serial stretches on a quiet host, short enough that with more runnable threads than CPUs
  // a waiting thread soon leaves its CPU to the one it waits for.
  std::chrono::microseconds in_call_spin{1000};

  static const WaitPolicy& get() {
    static const WaitPolicy policy = [] {
      WaitPolicy p;
      std::string name;
      if (const char* v = std::getenv("PYBERT_WAIT_POLICY")) name = v;
      else if (const char* v = std::getenv("OMP_WAIT_POLICY")) name = v;
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (const char* us = std::getenv("PYBERT_SPIN_US")) p.grace = std::chrono::microseconds(
          std::max(0L, std::strtol(us, nullptr, 10)));
      if (name == "active") p.never_park = true;
      if (name == "passive") p.grace = std::chrono::microseconds(0);
      return p;
    }();
    return policy;
  }
};

}  // namespace

int usable_cpus() {
  static const int n = [] {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
    const double quota = cgroup_cpu_limit();
    if (quota > 0) cpus = std::min<long>(cpus, std::max(1, static_cast<int>(std::ceil(quota))));
#endif
    return static_cast<int>(std::max(1L, cpus));
  }();
  return n;
}

void set_default_num_threads(int n) { g_default_threads = n > 0 ? n : 0; }
int default_num_threads() {
  const int n = g_default_threads;
  return n > 0 ? n : usable_cpus();
}
int thread_budget() {
  return t_budget > 0 ? t_budget : std::min(default_num_threads(), usable_cpus());
}
int64_t parallel_chunk_index() { return t_chunk; }

namespace {
class Worker;
}  // namespace

// The threads of one call and the parallel_for step they run now. Member 0 is the caller, the
// others leased workers. The caller publishes a step by writing its fields and then bumping
// `generation`; every member, the caller included, claims chunks of it (its own chunk first, so
// thread t runs chunk t of every step unless it is late, then any unclaimed one) until none is
// left. claimed[c] holds the generation that last claimed chunk c (slots past the step's chunks
// are marked as claimed when it is published), so a member still looking at an older step can
// never claim a chunk of the current one, and a step's fields are read only by members holding
// one of its chunks: the caller changes them only after all its chunks are done.
class Team {
 public:
  explicit Team(int size)
      : size(size), claimed(new std::atomic<uint64_t>[size]) {
    for (int c = 0; c < size; ++c) claimed[c].store(0, std::memory_order_relaxed);
  }

  // Waits until ready(): spins, letting another runnable thread on this CPU go first now and
  // then (std::this_thread::yield), and once it has spun `spin` while no chunk of the team was
  // running, sleeps until a wake() finds it ready. A member that finished its chunk before the
  // others keeps spinning as long as they work (chunks differ by more than any fixed bound at
  // large shapes, and a member woken from sleep costs the call its wake-up). Never sleeps under
  // the active wait policy.
  template <typename Ready>
  void wait_until(const Ready& ready, std::chrono::microseconds spin) {
    const WaitPolicy& policy = WaitPolicy::get();
    auto until = std::chrono::steady_clock::now() + spin;
    for (uint32_t i = 1; !ready(); ++i) {
      cpu_relax();
      if (i % 1024 != 0) continue;
      std::this_thread::yield();
      if (policy.never_park) continue;
      const auto now = std::chrono::steady_clock::now();
      if (done.load(std::memory_order_relaxed) < step_chunks.load(std::memory_order_relaxed))
        until = now + spin;  // a chunk is running: the team is working
      if (now < until) continue;
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with wake()'s fence
      sleep_.wait(lock, ready);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }

  // After a change a sleeper may wait for (a step published, a chunk done, the team closed).
  void wake() {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the change, then the sleepers count
    if (sleepers_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    sleep_.notify_all();
  }

  // The calling thread (member 0): runs fn's n_chunks (<= size) chunks on the team.
  void run_step(detail::ChunkFn call_, const void* fn_, int64_t begin_, int64_t end_,
                int64_t chunk_, int64_t n_chunks_) {
    const uint64_t gen = generation.load(std::memory_order_relaxed) + 1;
    call = call_, fn = fn_, begin = begin_, end = end_, chunk = chunk_, n_chunks = n_chunks_;
    error = nullptr;
    failed.store(false, std::memory_order_relaxed);
    done.store(0, std::memory_order_relaxed);
    for (int64_t c = n_chunks; c < size; ++c) claimed[c].store(gen, std::memory_order_relaxed);
    step_chunks.store(n_chunks, std::memory_order_relaxed);
    generation.store(gen, std::memory_order_release);
    wake();
    claim_and_run(0, gen);
    // What is left are chunks other members hold (spinning: a chunk is running; the yields
    // leave this CPU to a member that was preempted in its chunk, if it waits here).
    wait_until([&] { return done.load(std::memory_order_acquire) >= n_chunks; },
               WaitPolicy::get().in_call_spin);
    if (failed.load(std::memory_order_relaxed)) std::rethrow_exception(error);
  }

  // A leased worker: serves the team's steps, spinning between them, until the call closes it.
  void serve(int member) {
    const auto spin = WaitPolicy::get().in_call_spin;
    for (uint64_t seen = 0;;) {
      wait_until([&] {
        return generation.load(std::memory_order_acquire) != seen ||
               !open.load(std::memory_order_acquire);
      }, spin);
      const uint64_t gen = generation.load(std::memory_order_acquire);
      if (gen == seen) return;  // closed
      seen = gen;
      claim_and_run(member, gen);
    }
  }

  // The caller's budget is over: members leave once the current step's chunks are done.
  void close() {
    open.store(false, std::memory_order_release);
    wake();
  }

  const int size;
  std::vector<Worker*> workers;  // members 1..size-1

 private:
  bool claim(int64_t c, uint64_t gen) {
    uint64_t v = claimed[c].load(std::memory_order_acquire);
    return v < gen && claimed[c].compare_exchange_strong(v, gen, std::memory_order_acq_rel);
  }

  void claim_and_run(int member, uint64_t gen) {
    if (member < size && claim(member, gen)) run_chunk(member);
    for (int64_t c = 0; c < size; ++c)
      if (claim(c, gen)) run_chunk(c);
  }

  void run_chunk(int64_t c) {
    const int64_t b = begin + c * chunk, e = std::min(end, b + chunk);
    t_in_parallel = true;
    t_chunk = c;
    try {
      call(fn, b, e);
    } catch (...) {
      if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
    }
    t_in_parallel = false;
    t_chunk = 0;
    done.fetch_add(1, std::memory_order_release);
    wake();
  }

  std::unique_ptr<std::atomic<uint64_t>[]> claimed;  // (size)
  std::atomic<bool> open{true};
  std::atomic<uint64_t> generation{0};
  std::atomic<int64_t> done{0};         // chunks of the current step finished
  std::atomic<int64_t> step_chunks{0};  // the current step's n_chunks, for waiting members
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // the first chunk's exception, written by the one that set failed
  // The step, written by the caller before it publishes `generation`.
  detail::ChunkFn call = nullptr;
  const void* fn = nullptr;
  int64_t begin = 0, end = 0, chunk = 0, n_chunks = 0;
  // Where members that waited longer than their spin sleep (wait_until / wake).
  std::mutex sleep_mutex_;
  std::condition_variable sleep_;
  std::atomic<int> sleepers_{0};
};

namespace {

// A pool thread: parked until a call leases it, then a member of that call's team.
class Worker {
 public:
  // Hands the worker its next team (it may still be leaving its previous one).
  void post(std::shared_ptr<Team> team, int member) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      next_ = std::move(team);
      member_ = member;
      has_next_.store(true, std::memory_order_release);
      wake = parked_;
    }
    if (wake) changed_.notify_one();
  }

  void main() {
    const WaitPolicy& policy = WaitPolicy::get();
    for (;;) {
      spin_for_next(policy);
      std::shared_ptr<Team> team;
      int member;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        parked_ = true;
        changed_.wait(lock, [&] { return next_ != nullptr; });
        parked_ = false;
        team = std::move(next_);
        member = member_;
        has_next_.store(false, std::memory_order_relaxed);
      }
      team->serve(member);
    }
  }

 private:
  // The grace before parking: a call that comes within it finds this worker awake.
  void spin_for_next(const WaitPolicy& policy) const {
    const auto until = std::chrono::steady_clock::now() + policy.grace;
    for (uint32_t i = 1; !has_next_.load(std::memory_order_acquire); ++i) {
      cpu_relax();
      if (!policy.never_park && i % 64 == 0 && std::chrono::steady_clock::now() >= until) return;
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<Team> next_;  // guarded by mutex_
  int member_ = 0;              // guarded by mutex_
  bool parked_ = false;         // guarded by mutex_
  std::atomic<bool> has_next_{false};
};

// The process's workers. A call of n threads leases n - 1 of them; the compute slots bound the
// leased ones to usable_cpus() - 1, so the pool never starts more than that.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static std::once_flag once;
    std::call_once(once, [] {
      current() = new WorkerPool;
#if defined(__linux__)
      // A forked child has none of the parent's threads: it starts an empty pool (the old one
      // is leaked, its threads gone). Its compute slots start free too (ComputeSlots).
      pthread_atfork(nullptr, nullptr, [] { current() = new WorkerPool; });
#endif
    });
    return *current();
  }

  std::shared_ptr<Team> lease(int size) {
    auto team = std::make_shared<Team>(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(team->workers.size()) < size - 1) {
        if (idle_.empty()) {
          auto* w = new Worker;  // lives as long as the process
          std::thread([w] { w->main(); }).detach();
          ++started_;
          idle_.push_back(w);
        }
        team->workers.push_back(idle_.back());
        idle_.pop_back();
      }
    }
    for (size_t i = 0; i < team->workers.size(); ++i)
      team->workers[i]->post(team, static_cast<int>(i) + 1);
    return team;
  }

  void give_back(Team& team) {
    team.close();
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.insert(idle_.end(), team.workers.begin(), team.workers.end());
  }

  int started() {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }

 private:
  static WorkerPool*& current() {
    static WorkerPool* pool = nullptr;
    return pool;
  }

  std::mutex mutex_;
  std::vector<Worker*> idle_;
  int started_ = 0;
};

// The process-wide pool of compute slots, one per usable CPU (see ThreadBudget).
class ComputeSlots {
 public:
  static ComputeSlots& instance() {
    static std::once_flag once;
    std::call_once(once, [] {
      current() = new ComputeSlots(usable_cpus());  // never destroyed: safe at exit
#if defined(__linux__)
      pthread_atfork(nullptr, nullptr, [] { current() = new ComputeSlots(usable_cpus()); });
#endif
    });
    return *current();
  }

  // Waits for `wanted` (<= total_) free slots, first come first served, and takes them.
  void acquire(int wanted) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t ticket = next_ticket_++;
    changed_.wait(lock, [&] { return ticket == serving_ && free_ >= wanted; });
    ++serving_;
    free_ -= wanted;
    peak_ = std::max(peak_, total_ - free_);
    lock.unlock();
    changed_.notify_all();  // the next in line may fit in what is left
  }

  void release(int n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_ += n;
    }
    changed_.notify_all();
  }

  int in_use() {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_ - free_;
  }

  int peak(bool reset) {
    std::lock_guard<std::mutex> lock(mutex_);
    const int p = peak_;
    if (reset) peak_ = total_ - free_;
    return p;
  }

 private:
  explicit ComputeSlots(int total) : total_(total), free_(total) {}
  static ComputeSlots*& current() {
    static ComputeSlots* slots = nullptr;
    return slots;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  const int total_;
  int free_;
  uint64_t next_ticket_ = 0;  // handed to each arriving call
  uint64_t serving_ = 0;      // the ticket allowed to take slots next
  int peak_ = 0;              // the most slots in use at once since the last reset
};

}  // namespace

ThreadBudget::ThreadBudget(int n) : previous_(t_budget) {
  const int wanted = std::max(1, std::min(n > 0 ? n : default_num_threads(), usable_cpus()));
  if (previous_ > 0 || t_in_parallel) {  // nested: within the outer budget's slots and team
    threads_ = t_in_parallel ? 1 : std::min(wanted, previous_);
  } else {
    ComputeSlots::instance().acquire(wanted);
    threads_ = wanted;
    owns_slots_ = true;
    if (wanted > 1) {  // the workers wake now, while the caller starts the call serially
      team_ = WorkerPool::instance().lease(wanted);
      t_team = team_.get();
    }
  }
  t_budget = threads_;
}

ThreadBudget::~ThreadBudget() {
  t_budget = previous_;
  if (team_) {
    t_team = nullptr;
    WorkerPool::instance().give_back(*team_);
  }
  if (owns_slots_) ComputeSlots::instance().release(threads_);
}

int compute_slots_in_use() { return ComputeSlots::instance().in_use(); }
int peak_compute_slots(bool reset) { return ComputeSlots::instance().peak(reset); }
int pool_workers() { return WorkerPool::instance().started(); }

namespace detail {

bool in_parallel() { return t_in_parallel; }

void run_chunks(ChunkFn call, const void* fn, int64_t begin, int64_t end, int64_t chunk,
                int64_t n_chunks) {
  if (t_team == nullptr) {  // compute outside any call's budget (e.g. while loading)
    ThreadBudget budget(0);
    if (t_team != nullptr && n_chunks <= t_team->size) {
      t_team->run_step(call, fn, begin, end, chunk, n_chunks);
      return;
    }
    for (int64_t c = 0; c < n_chunks; ++c)
      call(fn, begin + c * chunk, std::min(end, begin + (c + 1) * chunk));
    return;
  }
  t_team->run_step(call, fn, begin, end, chunk, n_chunks);
}

}  // namespace detail
}  // namespace pybert
