// Threads, CPU features and the allocator policy.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "bindings/common.h"
#include "kernels/cpu_features.h"
#include "kernels/fma_peak.h"
#include "layers/encoder.h"
#include "ops/linear.h"
#include "parallel.h"

namespace pybert::bindings {

void register_runtime(py::module_& m) {
#if defined(__GLIBC__)
  // Output arrays of a few hundred KiB to hundreds of MiB are freed whenever Python drops them.
  // glibc raises its mmap threshold after such a free, so later ones land in the heap and
  // fragment it: +12% resident memory over 2,000 random calls of MiniLM (scripts/soak.py),
  // +1% with the threshold fixed at glibc's initial 128 KiB. Unless the user chose one.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"),
        "Process-wide default thread count for models created without num_threads; "
        "n <= 0 restores the default (all CPUs this process may use).");
  m.def("get_num_threads", &default_num_threads);
  m.def("compute_slots_in_use", &compute_slots_in_use,
        "Compute threads held by running calls; never more than usable_cpus().");
  m.def("peak_compute_slots", &peak_compute_slots, py::kw_only(), py::arg("reset") = false,
        "The most compute slots held at once since the last reset (reset=True starts anew "
        "from those held now); tests check each call's thread count with it.");
  m.def("pool_workers", &pool_workers,
        "Worker threads pybert's pool has started (each parked when no call leases it).");
  m.def("encoder_chunk_tokens", &layers::Encoder::chunk_tokens, py::arg("threads"),
        "The most tokens a model call runs through its layers at once on `threads` threads; "
        "a larger batch goes in chunks of whole sequences (the same values).");
  m.def("usable_cpus", &usable_cpus,
        "CPUs this process may use: its affinity mask, capped by the cgroup CPU quota.");
  m.def("measure_fma_peak", &kernels::measure_fma_peak, py::kw_only(), py::arg("threads"),
        py::call_guard<py::gil_scoped_release>(),
        "fp32 FMA GFLOP/s of this machine on `threads` threads, from a register-only loop "
        "(best of three; used by the benchmarks).");
  m.def("cpu_features", [] {
    const kernels::CpuFeatures& f = kernels::cpu_features();
    py::dict d;
#if defined(__aarch64__)
    d["arch"] = "aarch64";
    d["neon"] = f.neon;
    d["dotprod"] = f.dotprod;
    d["i8mm"] = f.i8mm;
    d["bf16"] = f.bf16;
#else
#if defined(__x86_64__)
    d["arch"] = "x86_64";
#else
    d["arch"] = "other";
#endif
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["avx512"] = f.avx512;
    d["avx512_vnni"] = f.avx512_vnni;
    d["avx512_bf16"] = f.avx512_bf16;
    d["amx_tile"] = f.amx_tile;
    d["amx_bf16"] = f.amx_bf16;
    d["amx_int8"] = f.amx_int8;
#endif
    d["isa_cap"] = f.isa_cap.empty() ? py::object(py::none()) : py::str(f.isa_cap);
    py::list caps;
    for (const char* const* c = kernels::isa_caps(); *c; ++c) caps.append(*c);
    d["isa_caps"] = caps;
    d["fp32_kernels"] = ops::kernels_for(ops::Precision::kFp32);
    d["bf16_kernels"] = ops::kernels_for(ops::Precision::kBf16);
    d["int8_kernels"] = ops::kernels_for(ops::Precision::kInt8);
    return d;
  });
}

}  // namespace pybert::bindings
