// Node-API surface of the native core: the exports of every binding file (bind_*.cc, with
// the argument helpers of binding.h; mpi.cc for MPI). Bindings validate arguments and move
// typed-array pointers to the C++ core; no policy, no IO. src/native.ts declares them.
#include <napi.h>

#include "binding.h"
#include "mpi_binding.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  binding::InitCorrelBindings(env, exports);
  binding::InitDeformBindings(env, exports);
  binding::InitPngBindings(env, exports);
  binding::InitRuntimeBindings(env, exports);
  binding::InitUncertaintyBindings(env, exports);
  InitMpi(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(fluidimage_native, Init)
