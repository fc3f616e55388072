// Node-API bindings of the process-wide settings of the native core: FFTW's planner
// (effort, wisdom, plans: fft_plans.h) and glibc's malloc.
#include <algorithm>
#include <limits>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "binding.h"
#include "fft_plans.h"

namespace binding {
namespace {

Napi::Value SetPlannerEffort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString() || !fi::SetPlannerEffort(info[0].As<Napi::String>()))
    ThrowArg(env, "effort", "'estimate', 'measure' or 'patient'");
  return env.Undefined();
}

Napi::Value PathArgCall(const Napi::CallbackInfo& info, bool (*fn)(const std::string&)) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(env, "path", "a string");
  return Napi::Boolean::New(env, fn(info[0].As<Napi::String>()));
}

// mallopt(param, argument 0 clamped to [lo, hi]) on glibc; false where the C library has no
// such setting. `name` names the argument in errors.
#if defined(__GLIBC__)
constexpr int kArenaMax = M_ARENA_MAX, kMmapThreshold = M_MMAP_THRESHOLD;
#else
constexpr int kArenaMax = 0, kMmapThreshold = 0;
#endif
Napi::Value MalloptFromArg(const Napi::CallbackInfo& info, const char* name, int param, int lo, int hi) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowArg(env, name, "a number");
#if defined(__GLIBC__)
  return Napi::Boolean::New(env, mallopt(param, std::max(lo, std::min(hi, info[0].As<Napi::Number>().Int32Value()))) == 1);
#else
  (void)param, (void)lo, (void)hi;
  return Napi::Boolean::New(env, false);
#endif
}

// Caps glibc's malloc arenas (MALLOC_ARENA_MAX is read at start-up only; MPI ranks
// set it here).
Napi::Value LimitMallocArenas(const Napi::CallbackInfo& info) {
  return MalloptFromArg(info, "arenas", kArenaMax, 1, std::numeric_limits<int>::max());
}

// mallopt(M_MMAP_THRESHOLD, bytes) on glibc: blocks this large come from mmap and go back to
// the system when freed. Also stops glibc's dynamic threshold, which otherwise grows after
// the first big frees and keeps later image-sized blocks in the heap for good.
Napi::Value SetMallocMmapThreshold(const Napi::CallbackInfo& info) {
  return MalloptFromArg(info, "bytes", kMmapThreshold, 4096, 32 << 20);
}

}  // namespace

void InitRuntimeBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("setPlannerEffort", Napi::Function::New(env, SetPlannerEffort));
  exports.Set("limitMallocArenas", Napi::Function::New(env, LimitMallocArenas));
  exports.Set("setMallocMmapThreshold", Napi::Function::New(env, SetMallocMmapThreshold));
  exports.Set("getPlannerEffort", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return Napi::String::New(i.Env(), fi::GetPlannerEffort());
  }));
  exports.Set("planCount", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return Napi::Number::New(i.Env(), fi::NumCachedPlans());
  }));
  exports.Set("importWisdom", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return PathArgCall(i, fi::ImportWisdom);
  }));
  exports.Set("exportWisdom", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return PathArgCall(i, fi::ExportWisdom);
  }));
  exports.Set("fftwVersion", Napi::String::New(env, fftwf_version));
}

}  // namespace binding
