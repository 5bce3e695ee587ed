// The AMX int8 / bf16 GEMM kernels alone (kernels/gemm_lowp.h), one thread, at BERT-base's
// Linear shapes (N x K: QKV 2304 x 768, attention output 768 x 768, FFN 3072 x 768 and
// 768 x 3072) for M rows a thread (8x128 on 2 threads: 512; 32x128: 2048): GOP/s of the GEMM
// (best of a few calls, bias epilogue) and the time of staging its input (quantize_rows /
// convert_rows) beside it.  Not a test: on a shared machine compare within one run.
//
//   /work/devbuild.sh .   # or any build of the core: this links its static library
//   g++ -O2 -std=c++17 -Icsrc benchmarks/gemm_lowp_amx.cc build/dev/libpybert_core.a
//       -o /tmp/gemm_lowp_amx        (one line)
//   /tmp/gemm_lowp_amx 512 2048      (M values)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/gemm_lowp.h"

using namespace pybert::kernels;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename Fn>
double best_seconds(const Fn& fn, int calls = 10) {
  double best = 1e30;
  for (int i = 0; i < calls; ++i) {
    const double t = now();
    fn();
    best = std::min(best, now() - t);
  }
  return best;
}

template <typename T>
T* aligned(size_t bytes) {
  return static_cast<T*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
}

}  // namespace

int main(int argc, char** argv) {
  const KernelSet& family = kernel_set();
  if (!family.bf16 || std::strcmp(family.bf16->name, "amx_bf16") != 0 ||
      std::strcmp(family.int8->name, "amx_int8") != 0) {
    std::printf("this CPU has no AMX (bf16 and int8): nothing to time\n");
    return 0;
  }
  const Int8Gemm& i8 = *family.int8;
  const Bf16Gemm& b16 = *family.bf16;
  std::vector<int64_t> row_counts;
  for (int i = 1; i < argc; ++i) row_counts.push_back(std::atol(argv[i]));
  if (row_counts.empty()) row_counts = {512, 2048};
  const int64_t shapes[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};  // N, K
  std::printf("M rows, N x K: int8 GOP/s (quantize_rows ms / GEMM ms); bf16 GFLOP/s "
              "(convert_rows ms / GEMM ms)\n");
  for (const int64_t M : row_counts)
    for (const auto& s : shapes) {
      const int64_t N = s[0], K = s[1];
      std::vector<float> A(M * K), W(N * K), C(M * N), bias(N, 0.1f);
      for (auto& v : A) v = float(std::rand() % 2001 - 1000) / 1000.f;
      for (auto& v : W) v = float(std::rand() % 2001 - 1000) / 1000.f;
      void* w_int8 = aligned<void>(packed_weight_int8_bytes(N, K));
      void* w_bf16 = aligned<void>(packed_weight_bf16_bytes(N, K));
      pack_weight_int8(W.data(), N, K, w_int8);
      pack_weight_bf16(W.data(), N, K, w_bf16);
      int8_t* Aq = aligned<int8_t>(quantized_rows_bytes(M, K));
      uint16_t* Ab = aligned<uint16_t>(bf16_rows_bytes(M, K));
      std::vector<float> scale(M);
      std::vector<int32_t> zero(M);
      Epilogue ep;
      ep.bias = bias.data();
      const double quantize = best_seconds([&] {
        i8.quantize_rows(A.data(), K, M, K, 0, M, Aq, scale.data(), zero.data());
      });
      const double int8 = best_seconds([&] {
        i8.gemm(Aq, scale.data(), zero.data(), w_int8, N, K, C.data(), N, 0, M, 0, N, ep);
      });
      const double convert = best_seconds([&] { b16.convert_rows(A.data(), K, M, K, 0, M, Ab); });
      const double bf16 =
          best_seconds([&] { b16.gemm(Ab, w_bf16, N, K, C.data(), N, 0, M, 0, N, ep); });
      const double ops = 2.0 * double(M) * double(N) * double(K);
      std::printf("M %5ld, %4ld x %4ld: int8 %5.0f GOP/s (%.3f / %.3f ms); bf16 %5.0f GFLOP/s "
                  "(%.3f / %.3f ms)\n",
                  long(M), long(N), long(K), ops / int8 / 1e9, quantize * 1e3, int8 * 1e3,
                  ops / bf16 / 1e9, convert * 1e3, bf16 * 1e3);
      std::free(w_int8);
      std::free(w_bf16);
      std::free(Aq);
      std::free(Ab);
    }
  return 0;
}
