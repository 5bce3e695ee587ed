#include "parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>

namespace pybert {
namespace {

thread_local int t_budget = 0;  // 0: use the process default
std::atomic<int> g_default_threads{0};  // 0: usable_cpus()

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

}  // namespace

int usable_cpus() {
  static const int n = [] {
    int cpus = omp_get_num_procs();
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
    const double quota = cgroup_cpu_limit();
    if (quota > 0) cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(quota))));
    return std::max(1, cpus);
  }();
  return n;
}

void set_default_num_threads(int n) { g_default_threads = n > 0 ? n : 0; }
int default_num_threads() {
  const int n = g_default_threads;
  return n > 0 ? n : usable_cpus();
}
int thread_budget() { return t_budget > 0 ? t_budget : default_num_threads(); }

namespace {

// The process-wide pool of compute slots, one per usable CPU (see ThreadBudget).
class ComputeSlots {
 public:
  static ComputeSlots& instance() {
    static ComputeSlots* slots = new ComputeSlots(usable_cpus());  // never destroyed: safe at exit
    return *slots;
  }

  // Waits for `wanted` (<= total_) free slots, first come first served, and takes them.
  void acquire(int wanted) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t ticket = next_ticket_++;
    changed_.wait(lock, [&] { return ticket == serving_ && free_ >= wanted; });
    ++serving_;
    free_ -= wanted;
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

 private:
  explicit ComputeSlots(int total) : total_(total), free_(total) {}

  std::mutex mutex_;
  std::condition_variable changed_;
  const int total_;
  int free_;
  uint64_t next_ticket_ = 0;  // handed to each arriving call
  uint64_t serving_ = 0;      // the ticket allowed to take slots next
};

}  // namespace

ThreadBudget::ThreadBudget(int n) : previous_(t_budget) {
  const int wanted = std::max(1, std::min(n > 0 ? n : default_num_threads(), usable_cpus()));
  if (previous_ > 0) {  // nested: stay within the slots the outer budget holds
    threads_ = std::min(wanted, previous_);
  } else {
    ComputeSlots::instance().acquire(wanted);
    threads_ = wanted;
    owns_slots_ = true;
  }
  t_budget = threads_;
}

ThreadBudget::~ThreadBudget() {
  t_budget = previous_;
  if (owns_slots_) ComputeSlots::instance().release(threads_);
}

int compute_slots_in_use() { return ComputeSlots::instance().in_use(); }

}  // namespace pybert
