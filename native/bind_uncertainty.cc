// Node-API binding of the per-vector uncertainty from correlation statistics (uncertainty.h):
// every window of one pass in one call, on libuv's pool.
#include <algorithm>
#include <string>

#include "binding.h"
#include "uncertainty.h"

namespace binding {
namespace {

class UncertaintyWorker : public PromiseWorker {
 public:
  UncertaintyWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    Napi::Float32Array im0 = Float32Arg(args, "im0");
    Napi::Float32Array im1 = Float32Arg(args, "im1");
    Napi::Int32Array s0 = GetTyped<Napi::Int32Array>(args, "starts0", napi_int32_array, "Int32Array");
    Napi::Int32Array s1 = GetTyped<Napi::Int32Array>(args, "starts1", napi_int32_array, "Int32Array");
    Napi::Float32Array rx = Float32Arg(args, "rx");
    Napi::Float32Array ry = Float32Arg(args, "ry");
    in_.ny = GetPositiveInt(args, "height");
    in_.nx = GetPositiveInt(args, "width");
    in_.h = GetPositiveInt(args, "h");
    in_.w = GetPositiveInt(args, "w");
    const size_t npix = static_cast<size_t>(in_.ny) * in_.nx;
    RequireElements(im0, npix, "im0", "height*width");
    RequireElements(im1, npix, "im1", "height*width");
    if (in_.h < 4 || in_.h > 4096 || in_.w < 4 || in_.w > 4096) ThrowArg(env, "h, w (window shape)", "sizes between 4 and 4096 pixels");
    if (s0.ElementLength() % 2 != 0) ThrowArg(env, "starts0", "an even length (row, col pairs)");
    if (s1.ElementLength() != s0.ElementLength()) ThrowArg(env, "starts1", "the same length as starts0");
    in_.n = static_cast<int>(s0.ElementLength() / 2);
    const std::string per = "one value per window = " + std::to_string(in_.n) + " elements";
    if (rx.ElementLength() != static_cast<size_t>(in_.n)) ThrowArg(env, "rx", per);
    if (ry.ElementLength() != static_cast<size_t>(in_.n)) ThrowArg(env, "ry", per);
    const double nb = GetNumber(args, "neighbourhood", true, 0);
    if (!(nb >= 0 && nb <= 4 && nb == static_cast<int>(nb))) ThrowArg(env, "neighbourhood", "an integer between 0 and 4");
    in_.neighbourhood = static_cast<int>(nb);
    in_.min_valid_fraction = GetNumber(args, "minValidFraction", true, 0.5);
    if (!(in_.min_valid_fraction >= 0 && in_.min_valid_fraction <= 1)) ThrowArg(env, "minValidFraction", "a number between 0 and 1");
    in_.im0 = im0.Data();
    in_.im1 = im1.Data();
    in_.starts0 = s0.Data();
    in_.starts1 = s1.Data();
    in_.rx = rx.Data();
    in_.ry = ry.Data();
    Napi::Float32Array sx = Napi::Float32Array::New(env, in_.n);
    Napi::Float32Array sy = Napi::Float32Array::New(env, in_.n);
    Napi::Float32Array ox = Napi::Float32Array::New(env, in_.n);
    Napi::Float32Array oy = Napi::Float32Array::New(env, in_.n);
    out_ = {sx.Data(), sy.Data(), ox.Data(), oy.Data()};
    Napi::Object result = Napi::Object::New(env);
    result.Set("sigmaX", sx);
    result.Set("sigmaY", sy);
    result.Set("offsetX", ox);
    result.Set("offsetY", oy);
    Keep(args, result);
  }

 protected:
  void Execute() override {
    Guarded("uncertainty", [&] {
      ForChunks(in_.n, std::min(threads_, in_.n / 64), 1, [this](int b, int e) { fi::UncertaintyRange(in_, out_, b, e); });
    });
  }

 private:
  fi::UncertaintyInput in_;
  fi::UncertaintyOutput out_;
};

Napi::Value CorrelationUncertainty(const Napi::CallbackInfo& info) {
  return QueueWorker<UncertaintyWorker>(info, "the uncertainty description");
}

}  // namespace

void InitUncertaintyBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("correlationUncertainty", Napi::Function::New(env, CorrelationUncertainty));
}

}  // namespace binding
