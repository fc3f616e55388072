// Instruction-set dispatch. The addon is built for the baseline of its architecture (it
// may be built on a login node and run on other compute nodes); hot loops get an AVX2+FMA
// variant chosen at load time where the compiler and the C library support it.
#pragma once

#include <cstddef>  // defines __GLIBC__ where the C library is glibc

// ifunc (behind target_clones) needs glibc: musl-based systems get the baseline code only.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__GLIBC__) && !defined(FI_NO_SIMD)
// Explicit AVX2 kernels (intrinsics in functions with a target attribute).
#define FI_X86_SIMD 1
// Auto-vectorised loops compiled twice, the variant picked by the loader (ifunc).
#define FI_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FI_X86_SIMD 0
#define FI_CLONES
#endif

#include <cstdlib>
#include <cstring>

namespace fi {

// Whether the explicit AVX2+FMA kernels run (decided once): the CPU has both, and
// FLUIDIMAGE_SIMD=generic does not ask for the baseline kernels (for comparisons).
inline bool UseAvx2() {
#if FI_X86_SIMD
  static const bool use = [] {
    const char* env = std::getenv("FLUIDIMAGE_SIMD");
    if (env && std::strcmp(env, "generic") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return use;
#else
  return false;
#endif
}

}  // namespace fi
