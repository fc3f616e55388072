// Node-API bindings of the image deformation (B-spline coefficients of a pair, deformation
// along a displacement field: deform.h) and of the thin-plate-spline smoothing (tps.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "binding.h"
#include "deform.h"
#include "tps.h"

namespace binding {
namespace {

// An optional output array of `n` floats given by the caller (reused buffers), else a new one.
Napi::Float32Array OutputArray(Napi::Object args, const char* name, size_t n) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return Napi::Float32Array::New(args.Env(), n);
  Napi::Float32Array a = Float32Arg(args, name);
  RequireElements(a, n, name, "height*width");
  return a;
}

int GetSplineDegree(Napi::Object o) {
  const double d = GetNumber(o, "degree", true, 5);
  if (!fi::ValidSplineDegree(static_cast<int>(d)) || d != static_cast<int>(d)) ThrowArg(o.Env(), "degree", "3, 5 or 7");
  return static_cast<int>(d);
}


// Runs fn(k) for k = 0, 1 (the two images of a pair), on two threads when allowed.
template <typename F>
void ForBoth(int threads, F fn) {
  if (threads < 2) {
    fn(0);
    fn(1);
    return;
  }
  std::thread other([&] { fn(1); });
  fn(0);
  other.join();
}

// B-spline coefficients of the two images of a pair (masked/NaN pixels filled first and
// recorded), computed once per pair and reused by every deformation of its passes.
class SplineWorker : public PromiseWorker {
 public:
  SplineWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    Napi::Float32Array im0 = Float32Arg(args, "im0");
    Napi::Float32Array im1 = Float32Arg(args, "im1");
    ny_ = GetPositiveInt(args, "height");
    nx_ = GetPositiveInt(args, "width");
    degree_ = GetSplineDegree(args);
    const size_t npix = static_cast<size_t>(ny_) * nx_;
    RequireElements(im0, npix, "im0", "height*width");
    RequireElements(im1, npix, "im1", "height*width");
    src_[0] = im0.Data();
    src_[1] = im1.Data();
    Napi::Object result = Napi::Object::New(env);
    for (int k = 0; k < 2; ++k) {
      Napi::Float32Array coef = OutputArray(args, k == 0 ? "coef0" : "coef1", npix);
      // In place (coef0 is im0) is allowed; crossing (coef0 is im1) or sharing is not.
      if (coef.Data() == src_[1 - k] || (k == 1 && coef.Data() == dst_[0]))
        ThrowArg(env, k == 0 ? "coef0" : "coef1", "its own array or its image's (in place), not the other one's");
      dst_[k] = coef.Data();
      result.Set(k == 0 ? "coef0" : "coef1", coef);
    }
    result.Set("degree", degree_);
    result.Set("height", ny_);
    result.Set("width", nx_);
    Keep(args, result);
  }

 protected:
  void Execute() override {
    ForBoth(threads_, [&](int k) { masked_[k] = fi::SplineCoefficients(src_[k], ny_, nx_, degree_, dst_[k], &valid_[k]); });
  }
  void OnOK() override {
    Napi::Object result = Result();
    for (int k = 0; k < 2; ++k) {
      const char* name = k == 0 ? "valid0" : "valid1";
      if (!masked_[k]) {
        result.Set(name, Env().Null());
        continue;
      }
      Napi::Uint8Array v = Napi::Uint8Array::New(Env(), valid_[k].size());
      std::copy(valid_[k].begin(), valid_[k].end(), v.Data());
      result.Set(name, v);
    }
    PromiseWorker::OnOK();
  }

 private:
  const float* src_[2] = {nullptr, nullptr};
  float* dst_[2] = {nullptr, nullptr};
  std::vector<uint8_t> valid_[2];
  bool masked_[2] = {false, false};
  int ny_ = 0, nx_ = 0, degree_ = 5;
};

Napi::Value SplinePair(const Napi::CallbackInfo& info) {
  return QueueWorker<SplineWorker>(info, "the pair description");
}

// Deforms both images of a pair along a displacement field given on a grid: image 0
// is sampled at x - d/2, image 1 at x + d/2, on libuv's pool. The images come either as
// pixels (im0, im1: prefiltered here) or as the result of splinePair (spline).
class DeformWorker : public PromiseWorker {
 public:
  DeformWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    Napi::Float32Array xs = Float32Arg(args, "xs");
    Napi::Float32Array ys = Float32Arg(args, "ys");
    Napi::Float32Array dx = Float32Arg(args, "dx");
    Napi::Float32Array dy = Float32Arg(args, "dy");
    ny_ = GetPositiveInt(args, "height");
    nx_ = GetPositiveInt(args, "width");
    const size_t npix = static_cast<size_t>(ny_) * nx_;
    const bool given = args.Has("spline") && !args.Get("spline").IsUndefined();
    if (given) {
      if (!args.Get("spline").IsObject()) ThrowArg(env, "spline", "the result of splinePair()");
      Napi::Object sp = args.Get("spline").As<Napi::Object>();
      base_.degree = GetSplineDegree(sp);
      if (GetPositiveInt(sp, "height") != ny_ || GetPositiveInt(sp, "width") != nx_)
        ThrowArg(env, "spline", "coefficients of a " + std::to_string(ny_) + "x" + std::to_string(nx_) + " pair");
      for (int k = 0; k < 2; ++k) {
        const char* cname = k == 0 ? "coef0" : "coef1";
        const char* vname = k == 0 ? "valid0" : "valid1";
        Napi::Float32Array c = Float32Arg(sp, cname);
        RequireElements(c, npix, std::string("spline.") + cname, "height*width");
        coef_[k] = c.Data();
        Napi::Value v = sp.Get(vname);
        if (!v.IsNull() && !v.IsUndefined()) {
          Napi::Uint8Array u = GetTyped<Napi::Uint8Array>(sp, vname, napi_uint8_array, "Uint8Array or null");
          RequireElements(u, npix, std::string("spline.") + vname, "height*width");
          valid_ptr_[k] = u.Data();
        }
      }
    } else {
      Napi::Float32Array im0 = Float32Arg(args, "im0");
      Napi::Float32Array im1 = Float32Arg(args, "im1");
      base_.degree = GetSplineDegree(args);
      RequireElements(im0, npix, "im0", "height*width");
      RequireElements(im1, npix, "im1", "height*width");
      src_[0] = im0.Data();
      src_[1] = im1.Data();
    }
    if (xs.ElementLength() < 1 || ys.ElementLength() < 1) ThrowArg(env, "xs/ys", "non-empty grid axes");
    for (Napi::Float32Array axis : {xs, ys})
      for (size_t i = 1; i < axis.ElementLength(); ++i)
        if (!(axis[i] > axis[i - 1])) ThrowArg(env, "xs/ys", "strictly increasing grid axes");
    const size_t ng = xs.ElementLength() * ys.ElementLength();
    RequireElements(dx, ng, "dx", "xs.length*ys.length");
    RequireElements(dy, ng, "dy", "xs.length*ys.length");
    for (size_t i = 0; i < ng; ++i)
      if (!std::isfinite(dx[i]) || !std::isfinite(dy[i])) ThrowArg(env, "dx/dy", "finite values (fill rejected vectors first)");
    base_.ny = ny_;
    base_.nx = nx_;
    base_.xs = xs.Data();
    base_.ys = ys.Data();
    base_.gx = static_cast<int>(xs.ElementLength());
    base_.gy = static_cast<int>(ys.ElementLength());
    base_.dx = dx.Data();
    base_.dy = dy.Data();
    Napi::Float32Array out0 = OutputArray(args, "out0", npix);
    Napi::Float32Array out1 = OutputArray(args, "out1", npix);
    dst_[0] = out0.Data();
    dst_[1] = out1.Data();
    for (int k = 0; k < 2; ++k)
      for (const float* in : {src_[0], src_[1], coef_[0], coef_[1]})
        if (in && in == dst_[k]) ThrowArg(env, k == 0 ? "out0" : "out1", "an array other than the inputs");
    if (dst_[0] == dst_[1]) ThrowArg(env, "out1", "an array other than out0");
    Napi::Object result = Napi::Object::New(env);
    result.Set("im0", out0);
    result.Set("im1", out1);
    Keep(args, result);
  }

 protected:
  void Execute() override {
    Guarded("deformation", [&] {
      const size_t npix = static_cast<size_t>(ny_) * nx_;
      std::vector<float> own[2];
      std::vector<uint8_t> valid[2];
      if (src_[0]) {
        ForBoth(threads_, [&](int k) {
          own[k].resize(npix);
          if (fi::SplineCoefficients(src_[k], ny_, nx_, base_.degree, own[k].data(), &valid[k])) valid_ptr_[k] = valid[k].data();
          coef_[k] = own[k].data();
        });
      }
      for (int k = 0; k < 2; ++k) {
        fi::DeformInput in = base_;
        in.factor = k == 0 ? -0.5f : 0.5f;
        in.valid = valid_ptr_[k];
        ForChunks(ny_, std::min(threads_, ny_ / 32), 1, [&](int b, int e) { fi::DeformRows(in, coef_[k], dst_[k], b, e); });
      }
    });
  }

 private:
  fi::DeformInput base_;
  const float* src_[2] = {nullptr, nullptr};
  const float* coef_[2] = {nullptr, nullptr};
  const uint8_t* valid_ptr_[2] = {nullptr, nullptr};
  float* dst_[2] = {nullptr, nullptr};
  int ny_ = 0, nx_ = 0;
};

Napi::Value DeformPair(const Napi::CallbackInfo& info) {
  return QueueWorker<DeformWorker>(info, "the deformation description");
}

// Thin-plate-spline smoothing of a scattered field on libuv's pool (tps.h).
class TpsWorker : public PromiseWorker {
 public:
  TpsWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    auto f64 = [&](const char* name) { return GetTyped<Napi::Float64Array>(args, name, napi_float64_array, "Float64Array"); };
    Napi::Float64Array x = f64("x"), y = f64("y"), u = f64("u"), v = f64("v"), xn = f64("xNew"), yn = f64("yNew");
    const size_t n = x.ElementLength();
    for (auto [arr, name] : {std::pair{y, "y"}, std::pair{u, "u"}, std::pair{v, "v"}})
      if (arr.ElementLength() != n) ThrowArg(env, name, "the same length as x (" + std::to_string(n) + ")");
    if (yn.ElementLength() != xn.ElementLength()) ThrowArg(env, "yNew", "the same length as xNew");
    in_.x = x.Data();
    in_.y = y.Data();
    in_.u = u.Data();
    in_.v = v.Data();
    in_.n = static_cast<int>(n);
    in_.subdom_size = GetPositiveInt(args, "subdomSize");
    in_.smoothing_coef = GetNumber(args, "smoothingCoef");
    in_.threshold = GetNumber(args, "threshold");
    if (!(in_.smoothing_coef >= 0)) ThrowArg(env, "smoothingCoef", "a number >= 0");
    if (!(in_.threshold > 0)) ThrowArg(env, "threshold", "a number > 0");
    Napi::Value sp = args.Get("smoothAtPoints");
    in_.smooth_at_points = sp.IsUndefined() ? true : sp.ToBoolean().Value();
    xn_ = xn.Data();
    yn_ = yn.Data();
    m_ = static_cast<int>(xn.ElementLength());
    Napi::Float64Array un = Napi::Float64Array::New(env, m_), vn = Napi::Float64Array::New(env, m_);
    Napi::Float64Array us = Napi::Float64Array::New(env, n), vs = Napi::Float64Array::New(env, n);
    un_ = un.Data();
    vn_ = vn.Data();
    us_ = us.Data();
    vs_ = vs.Data();
    Napi::Object result = Napi::Object::New(env);
    result.Set("uNew", un);
    result.Set("vNew", vn);
    result.Set("uSmooth", us);
    result.Set("vSmooth", vs);
    Keep(args, result);
  }

 protected:
  void Execute() override {
    Guarded("TPS", [&] {
      fi::TpsSmooth(in_, xn_, yn_, m_, un_, vn_, &out_, threads_);
      std::copy(out_.u_smooth.begin(), out_.u_smooth.end(), us_);
      std::copy(out_.v_smooth.begin(), out_.v_smooth.end(), vs_);
    });
  }
  void OnOK() override {
    Napi::Object result = Result();
    result.Set("replaced", Napi::Number::New(Env(), out_.replaced));
    result.Set("singularBoxes", Napi::Number::New(Env(), out_.singular_boxes));
    PromiseWorker::OnOK();
  }

 private:
  fi::TpsInput in_;
  fi::TpsOutput out_;
  const double *xn_ = nullptr, *yn_ = nullptr;
  double *un_ = nullptr, *vn_ = nullptr, *us_ = nullptr, *vs_ = nullptr;
  int m_ = 0;
};

Napi::Value TpsSmooth(const Napi::CallbackInfo& info) {
  return QueueWorker<TpsWorker>(info, "the TPS description");
}

}  // namespace

void InitDeformBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("deformPair", Napi::Function::New(env, DeformPair));
  exports.Set("splinePair", Napi::Function::New(env, SplinePair));
  exports.Set("deformKernel", Napi::String::New(env, fi::DeformKernelName()));
  exports.Set("tpsSmooth", Napi::Function::New(env, TpsSmooth));
}

}  // namespace binding
