// One attention head at a time, the kernels alone (kernels/attention.h, gemm_lowp.h), one
// thread: the fp32 family's head, and where the CPU has bf16 kernels, the bf16 head and the
// split one (three bf16 terms, the int8 precision's from keys x d_head = 4096).  Microseconds a
// head, best of 7 passes over `seqs` sequences x `heads` heads laid out as a model's qkv buffer
// (rows of 3 x hidden floats).  With seqs = 1 the rows stay in the cache; with 32 (BERT-base 32x128:
// 37 MB of qkv) they do not, as in a model call.  `hot-out` writes every head's output to the
// first sequence's rows (kept in the cache), to separate the output's cost from the inputs'.
// Not a test: on a shared machine compare within one run.
//
//   /work/devbuild.sh .   # or any build of the core: this links its static library
//   g++ -O2 -std=c++17 -Icsrc benchmarks/attention_head.cc build/dev/libpybert_core.a
//       -lpthread -o /tmp/attention_head        (one line)
//   /tmp/attention_head 128 64 12 32 [hot-out]   (len d_head heads seqs)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/gemm_lowp.h"

using namespace pybert::kernels;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s len d_head heads seqs [hot-out]\n", argv[0]);
    return 2;
  }
  const int64_t len = std::atoll(argv[1]), d = std::atoll(argv[2]), heads = std::atoll(argv[3]);
  const int64_t seqs = std::atoll(argv[4]);
  const bool hot_out = argc > 5 && std::strcmp(argv[5], "hot-out") == 0;
  if (len <= 0 || d <= 0 || heads <= 0 || seqs <= 0) return 2;
  const int64_t hidden = d * heads, ld = 3 * hidden;
  std::vector<float> qkv(size_t(seqs * len * ld)), out(size_t(seqs * len * hidden));
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  for (float& x : qkv) x = normal(gen);
  const KernelSet& ks = kernel_set();
  int64_t bytes = ks.attention->scratch_floats(len, d) * 4;
  if (ks.bf16) bytes = std::max(bytes, ks.bf16->attention_scratch_bytes(len, d, true));
  std::vector<float> scratch_store(size_t(bytes / 4 + 16));
  float* scratch = reinterpret_cast<float*>(
      (reinterpret_cast<uintptr_t>(scratch_store.data()) + 63) / 64 * 64);
  const float scale = 1.0f / std::sqrt(float(d));
  const char* names[] = {"fp32", "bf16", "split"};
  for (int mode = 0; mode < 3; ++mode) {
    if (mode == 1 && !ks.bf16) break;
    if (mode == 2 && !ks.bf16->attention_head_split) break;
    double best = 1e30;
    for (int pass = 0; pass < 7; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < seqs; ++s)
        for (int64_t h = 0; h < heads; ++h) {
          const float* q = qkv.data() + s * len * ld + h * d;
          float* o = out.data() + (hot_out ? 0 : s * len * hidden) + h * d;
          if (mode == 0)
            ks.attention->head(q, q + hidden, q + 2 * hidden, ld, len, d, scale, o, hidden,
                               scratch);
          else
            (mode == 1 ? ks.bf16->attention_head : ks.bf16->attention_head_split)(
                q, q + hidden, q + 2 * hidden, ld, len, d, scale, o, nullptr, hidden, scratch);
        }
      const double us = std::chrono::duration<double, std::micro>(
                            std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, us / double(seqs * heads));
    }
    std::printf("len %lld d_head %lld seqs %lld%s %-5s %8.2f us a head\n", (long long)len,
                (long long)d, (long long)seqs, hot_out ? " hot-out" : "", names[mode], best);
  }
  return 0;
}
