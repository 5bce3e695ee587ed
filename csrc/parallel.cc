#include "parallel.h"

#include <sched.h>

#include <cmath>
#include <fstream>
#include <string>

namespace pybert {
namespace {

thread_local int t_budget = 0;  // 0: use the process default
int g_default_threads = 0;       // 0: usable_cpus()

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
int default_num_threads() { return g_default_threads > 0 ? g_default_threads : usable_cpus(); }
int thread_budget() { return t_budget > 0 ? t_budget : default_num_threads(); }

ThreadBudget::ThreadBudget(int n) : previous_(t_budget) { t_budget = n > 0 ? n : 0; }
ThreadBudget::~ThreadBudget() { t_budget = previous_; }

}  // namespace pybert
