#include "kernels/cpu_features.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace pybert::kernels {
namespace {

bool cap_is(const char* cap, const char* name) { return cap && std::strcmp(cap, name) == 0; }

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux keeps AMX tile data off until a process asks for it once.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool has_fma = c & (1u << 12);
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
  const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = os_avx && (b & (1u << 5));
  f.fma = os_avx && has_fma;
  f.avx512 = os_avx512 && (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) &&
             (b & (1u << 31));
  f.avx512_vnni = f.avx512 && (c & (1u << 11));
  const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
  if (os_amx && amx_tile && request_amx_permission()) {
    f.amx_tile = true;
    f.amx_bf16 = amx_bf16;
    f.amx_int8 = amx_int8;
  }
  return f;
}

void apply_cap(const char* cap, CpuFeatures& f) {
  if (cap_is(cap, "avx512")) {  // no AMX: int8 on VNNI, bf16 on fp32 kernels
    f.amx_tile = f.amx_bf16 = f.amx_int8 = false;
  } else if (cap_is(cap, "avx2")) {
    const bool avx2 = f.avx2, fma = f.fma;
    f = CpuFeatures{};
    f.avx2 = avx2;
    f.fma = fma;
  } else if (cap_is(cap, "generic")) {
    f = CpuFeatures{};
  } else {
    return;
  }
  f.isa_cap = cap;
}

constexpr const char* kCaps[] = {"avx512", "avx2", "generic", nullptr};

#elif defined(__aarch64__)
// Linux: getauxval's hardware capability bits; macOS: the hw.optional.arm sysctls.
CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // armv8-a: Advanced SIMD is part of the base architecture on Linux
#if defined(__linux__)
  // Bits from the kernel's uapi asm/hwcap.h (named here so the build needs no kernel headers).
  constexpr unsigned long kHwcapAsimddp = 1ul << 20;
  constexpr unsigned long kHwcap2I8mm = 1ul << 13;
  constexpr unsigned long kHwcap2Bf16 = 1ul << 14;
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
  f.dotprod = hwcap & kHwcapAsimddp;
  f.i8mm = hwcap2 & kHwcap2I8mm;
  f.bf16 = hwcap2 & kHwcap2Bf16;
#elif defined(__APPLE__)
  const auto has = [](const char* name) {
    int value = 0;
    size_t size = sizeof(value);
    return sysctlbyname(name, &value, &size, nullptr, 0) == 0 && value != 0;
  };
  f.dotprod = has("hw.optional.arm.FEAT_DotProd");
  f.i8mm = has("hw.optional.arm.FEAT_I8MM");
  f.bf16 = has("hw.optional.arm.FEAT_BF16");
#endif
  return f;
}

void apply_cap(const char* cap, CpuFeatures& f) {
  if (cap_is(cap, "i8mm")) {
    f.bf16 = false;
  } else if (cap_is(cap, "dotprod")) {
    f.i8mm = f.bf16 = false;
  } else if (cap_is(cap, "neon")) {
    f.dotprod = f.i8mm = f.bf16 = false;
  } else if (cap_is(cap, "generic")) {
    f = CpuFeatures{};
  } else {
    return;
  }
  f.isa_cap = cap;
}

constexpr const char* kCaps[] = {"i8mm", "dotprod", "neon", "generic", nullptr};

#else
CpuFeatures detect() { return CpuFeatures{}; }

void apply_cap(const char* cap, CpuFeatures& f) {
  if (cap_is(cap, "generic")) f.isa_cap = cap;
}

constexpr const char* kCaps[] = {"generic", nullptr};
#endif

CpuFeatures detect_capped() {
  CpuFeatures f = detect();
  // PYBERT_ISA caps what the kernels may use, to test the fallbacks on a wider CPU.
  apply_cap(std::getenv("PYBERT_ISA"), f);
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_capped();
  return features;
}

const char* const* isa_caps() { return kCaps; }

}  // namespace pybert::kernels
