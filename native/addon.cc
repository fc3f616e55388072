// Node-API surface of the native core. Everything here validates arguments and moves
// typed-array pointers to the C++ core; no policy, no IO. src/native.ts declares it.
#include <napi.h>

#include <algorithm>
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "correl.h"
#include "deform.h"
#include "fix.h"
#include "png.h"
#include "tps.h"
#include "fft_plans.h"
#include "mpi_binding.h"

namespace {

// Error with a Node-style `code`, thrown back to JS as an exception.
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& msg, bool type = false) {
  Napi::Error err = type ? Napi::TypeError::New(env, msg) : Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

[[noreturn]] void ThrowArg(Napi::Env env, const std::string& name, const std::string& expected) {
  throw MakeError(env, "ERR_INVALID_ARG_TYPE", "Expected " + expected + " for " + name, true);
}

double GetNumber(Napi::Object o, const char* name, bool optional = false, double def = 0) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() && optional) return def;
  if (!v.IsNumber()) ThrowArg(o.Env(), name, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

int GetPositiveInt(Napi::Object o, const char* name) {
  const double d = GetNumber(o, name);
  if (!(d >= 1 && d == static_cast<int>(d))) ThrowArg(o.Env(), name, "a positive integer");
  return static_cast<int>(d);
}

template <typename T>
T GetTyped(Napi::Object o, const char* name, napi_typedarray_type type, const char* type_name) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    ThrowArg(o.Env(), name, std::string("a ") + type_name);
  return v.As<T>();
}

// An AsyncWorker whose promise settles with a "result" object prepared on the JS thread
// (typed arrays that Execute fills in place), keeping the inputs alive meanwhile.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  void Keep(Napi::Object args, Napi::Object result) {
    keep_ = Napi::Persistent(Napi::Object::New(Env()));
    keep_.Set("args", args);
    keep_.Set("result", result);
  }
  Napi::Object Result() { return keep_.Get("result").As<Napi::Object>(); }
  void OnOK() override { deferred_.Resolve(Result()); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(MakeError(Env(), "ERR_FLUIDIMAGE_NATIVE", e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
};

int ThreadsArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return 1;
  if (!info[index].IsNumber()) ThrowArg(info.Env(), "threads", "a number");
  return std::max(1, std::min(256, info[index].As<Napi::Number>().Int32Value()));
}

// Starts a worker and returns its promise.
template <typename W, typename... A>
Napi::Value QueueWorker(const Napi::CallbackInfo& info, const char* what, A... extra) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowArg(env, what, "an object");
  auto* worker = new W(env, info[0].As<Napi::Object>(), extra...);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// Runs fn(begin, end) over [0, n) split in `nt` chunks on as many threads (the calling one
// among them), chunk sizes rounded up to a multiple of `align`.
template <typename F>
void ForChunks(int n, int nt, int align, F fn) {
  if (nt <= 1) {
    fn(0, n);
    return;
  }
  const int chunk = ((n + nt - 1) / nt + align - 1) / align * align;
  std::vector<std::thread> pool;
  for (int b = chunk; b < n; b += chunk) pool.emplace_back([&fn, b, e = std::min(n, b + chunk)] { fn(b, e); });
  try {
    fn(0, std::min(n, chunk));
  } catch (...) {
    for (auto& th : pool) th.join();  // never unwind past joinable threads
    throw;
  }
  for (auto& th : pool) th.join();
}

// Correlates every window of one pass of one pair on libuv's pool (optionally split
// over several threads) and fills output typed arrays allocated on the JS thread, so
// results cross the boundary without a copy.
class CorrelWorker : public PromiseWorker {
 public:
  CorrelWorker(Napi::Env env, Napi::Object args, int threads)
      : PromiseWorker(env), threads_(threads) {
    Napi::Float32Array im0 = GetTyped<Napi::Float32Array>(args, "im0", napi_float32_array, "Float32Array");
    Napi::Float32Array im1 = GetTyped<Napi::Float32Array>(args, "im1", napi_float32_array, "Float32Array");
    Napi::Int32Array s0 = GetTyped<Napi::Int32Array>(args, "starts0", napi_int32_array, "Int32Array");
    Napi::Int32Array s1 = GetTyped<Napi::Int32Array>(args, "starts1", napi_int32_array, "Int32Array");
    in_.ny = GetPositiveInt(args, "height");
    in_.nx = GetPositiveInt(args, "width");
    in_.h0 = GetPositiveInt(args, "h0");
    in_.w0 = GetPositiveInt(args, "w0");
    in_.h1 = GetPositiveInt(args, "h1");
    in_.w1 = GetPositiveInt(args, "w1");
    const size_t npix = static_cast<size_t>(in_.ny) * in_.nx;
    if (im0.ElementLength() != npix) ThrowArg(env, "im0", "height*width = " + std::to_string(npix) + " elements");
    if (im1.ElementLength() != npix) ThrowArg(env, "im1", "height*width = " + std::to_string(npix) + " elements");
    if (s0.ElementLength() % 2 != 0) ThrowArg(env, "starts0", "an even length (row, col pairs)");
    if (s1.ElementLength() != s0.ElementLength()) ThrowArg(env, "starts1", "the same length as starts0");
    for (const int s : {in_.h0, in_.w0, in_.h1, in_.w1})
      if (s < 4 || s > 4096) ThrowArg(env, "window shape", "sizes between 4 and 4096 pixels");
    in_.n = static_cast<int>(s0.ElementLength() / 2);
    in_.displacement_max = static_cast<float>(GetNumber(args, "displacementMax", true, 0));
    in_.subpix = static_cast<int>(GetNumber(args, "subpix", true, fi::kGaussian2));
    if (in_.subpix < 0 || in_.subpix > 3) ThrowArg(env, "subpix", "0 (none), 1 (centroid), 2 (2d_gaussian2) or 3 (2d_gaussian)");
    in_.nsubpix = static_cast<int>(GetNumber(args, "nsubpix", true, 1));
    in_.min_valid_fraction = GetNumber(args, "minValidFraction", true, 0.5);
    in_.nb_peaks = static_cast<int>(GetNumber(args, "nbPeaks", true, 1));
    if (in_.nb_peaks < 1 || in_.nb_peaks > fi::kMaxPeaks) ThrowArg(env, "nbPeaks", "an integer between 1 and 8");
    in_.exclude_radius = static_cast<int>(GetNumber(args, "particleRadius", true, 3));
    if (in_.exclude_radius < 0 || in_.exclude_radius > 64) ThrowArg(env, "particleRadius", "an integer between 0 and 64");
    in_.window_sigma = GetNumber(args, "windowSigma", true, 0);
    if (!(in_.window_sigma >= 0 && in_.window_sigma <= 10)) ThrowArg(env, "windowSigma", "a number between 0 (uniform) and 10");
    if (!(in_.min_valid_fraction >= 0 && in_.min_valid_fraction <= 1)) ThrowArg(env, "minValidFraction", "a number between 0 and 1");
    if (in_.nsubpix < 1 || in_.nsubpix > 8) ThrowArg(env, "nsubpix", "an integer between 1 and 8");
    in_.im0 = im0.Data();
    in_.im1 = im1.Data();
    in_.starts0 = s0.Data();
    in_.starts1 = s1.Data();

    Napi::Float32Array dx = Napi::Float32Array::New(env, in_.n);
    Napi::Float32Array dy = Napi::Float32Array::New(env, in_.n);
    Napi::Float32Array correl = Napi::Float32Array::New(env, in_.n);
    Napi::Uint8Array code = Napi::Uint8Array::New(env, in_.n);
    const size_t n2 = static_cast<size_t>(in_.n) * (in_.nb_peaks - 1);
    Napi::Float32Array dx2 = Napi::Float32Array::New(env, n2);
    Napi::Float32Array dy2 = Napi::Float32Array::New(env, n2);
    Napi::Float32Array correl2 = Napi::Float32Array::New(env, n2);
    out_ = {dx.Data(), dy.Data(), correl.Data(), code.Data(), dx2.Data(), dy2.Data(), correl2.Data()};
    Napi::Object result = Napi::Object::New(env);
    result.Set("dx", dx);
    result.Set("dy", dy);
    result.Set("correl", correl);
    result.Set("code", code);
    result.Set("dx2", dx2);
    result.Set("dy2", dy2);
    result.Set("correl2", correl2);
    profile_ = args.Has("profile") && args.Get("profile").ToBoolean();
    // Keep inputs and outputs alive (and their memory in place) while the pool works.
    Keep(args, result);
  }

  void OnOK() override {
    if (profile_) {
      Napi::Object phases = Napi::Object::New(Env());
      phases.Set("load", phases_.load);
      phases.Set("fft", phases_.fft);
      phases.Set("spectra", phases_.spectra);
      phases.Set("peaks", phases_.peaks);
      Result().Set("phases", phases);
    }
    PromiseWorker::OnOK();
  }


 protected:
  void Execute() override {
    try {
      // Even chunk sizes: windows are transformed in pairs (2m, 2m + 1), and results do not
      // depend on how the pass is split.
      ForChunks(in_.n, std::min(threads_, in_.n / 16), 2, [this](int b, int e) {
        fi::PassPhases mine;
        fi::CorrelateRange(in_, out_, b, e, profile_ ? &mine : nullptr);
        if (!profile_) return;
        std::lock_guard<std::mutex> lock(phases_mutex_);
        phases_.load += mine.load;
        phases_.fft += mine.fft;
        phases_.spectra += mine.spectra;
        phases_.peaks += mine.peaks;
      });
    } catch (const std::exception& e) {
      SetError(std::string("native correlation failed: ") + e.what());
    }
  }

 private:
  fi::PassInput in_;
  fi::PassOutput out_;
  int threads_;
  bool profile_ = false;
  fi::PassPhases phases_;
  std::mutex phases_mutex_;
};

Napi::Value CorrelatePass(const Napi::CallbackInfo& info) {
  return QueueWorker<CorrelWorker>(info, "the pass description", ThreadsArg(info, 1));
}


// An optional output array of `n` floats given by the caller (reused buffers), else a new one.
Napi::Float32Array OutputArray(Napi::Object args, const char* name, size_t n) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return Napi::Float32Array::New(args.Env(), n);
  Napi::Float32Array a = GetTyped<Napi::Float32Array>(args, name, napi_float32_array, "Float32Array");
  if (a.ElementLength() != n) ThrowArg(args.Env(), name, "height*width = " + std::to_string(n) + " elements");
  return a;
}

int GetSplineDegree(Napi::Object o) {
  const double d = GetNumber(o, "degree", true, 5);
  if (!fi::ValidSplineDegree(static_cast<int>(d)) || d != static_cast<int>(d)) ThrowArg(o.Env(), "degree", "5 or 7");
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
  SplineWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env), threads_(threads) {
    Napi::Float32Array im0 = GetTyped<Napi::Float32Array>(args, "im0", napi_float32_array, "Float32Array");
    Napi::Float32Array im1 = GetTyped<Napi::Float32Array>(args, "im1", napi_float32_array, "Float32Array");
    ny_ = GetPositiveInt(args, "height");
    nx_ = GetPositiveInt(args, "width");
    degree_ = GetSplineDegree(args);
    const size_t npix = static_cast<size_t>(ny_) * nx_;
    if (im0.ElementLength() != npix) ThrowArg(env, "im0", "height*width = " + std::to_string(npix) + " elements");
    if (im1.ElementLength() != npix) ThrowArg(env, "im1", "height*width = " + std::to_string(npix) + " elements");
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
  int threads_;
};

Napi::Value SplinePair(const Napi::CallbackInfo& info) {
  return QueueWorker<SplineWorker>(info, "the pair description", ThreadsArg(info, 1));
}

// Deforms both images of a pair along a displacement field given on a grid: image 0
// is sampled at x - d/2, image 1 at x + d/2, on libuv's pool. The images come either as
// pixels (im0, im1: prefiltered here) or as the result of splinePair (spline).
class DeformWorker : public PromiseWorker {
 public:
  DeformWorker(Napi::Env env, Napi::Object args, int threads)
      : PromiseWorker(env), threads_(threads) {
    Napi::Float32Array xs = GetTyped<Napi::Float32Array>(args, "xs", napi_float32_array, "Float32Array");
    Napi::Float32Array ys = GetTyped<Napi::Float32Array>(args, "ys", napi_float32_array, "Float32Array");
    Napi::Float32Array dx = GetTyped<Napi::Float32Array>(args, "dx", napi_float32_array, "Float32Array");
    Napi::Float32Array dy = GetTyped<Napi::Float32Array>(args, "dy", napi_float32_array, "Float32Array");
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
        Napi::Float32Array c = GetTyped<Napi::Float32Array>(sp, cname, napi_float32_array, "Float32Array");
        if (c.ElementLength() != npix) ThrowArg(env, std::string("spline.") + cname, "height*width = " + std::to_string(npix) + " elements");
        coef_[k] = c.Data();
        Napi::Value v = sp.Get(vname);
        if (!v.IsNull() && !v.IsUndefined()) {
          Napi::Uint8Array u = GetTyped<Napi::Uint8Array>(sp, vname, napi_uint8_array, "Uint8Array or null");
          if (u.ElementLength() != npix) ThrowArg(env, std::string("spline.") + vname, "height*width = " + std::to_string(npix) + " elements");
          valid_ptr_[k] = u.Data();
        }
      }
    } else {
      Napi::Float32Array im0 = GetTyped<Napi::Float32Array>(args, "im0", napi_float32_array, "Float32Array");
      Napi::Float32Array im1 = GetTyped<Napi::Float32Array>(args, "im1", napi_float32_array, "Float32Array");
      base_.degree = GetSplineDegree(args);
      if (im0.ElementLength() != npix) ThrowArg(env, "im0", "height*width = " + std::to_string(npix) + " elements");
      if (im1.ElementLength() != npix) ThrowArg(env, "im1", "height*width = " + std::to_string(npix) + " elements");
      src_[0] = im0.Data();
      src_[1] = im1.Data();
    }
    if (xs.ElementLength() < 1 || ys.ElementLength() < 1) ThrowArg(env, "xs/ys", "non-empty grid axes");
    for (Napi::Float32Array axis : {xs, ys})
      for (size_t i = 1; i < axis.ElementLength(); ++i)
        if (!(axis[i] > axis[i - 1])) ThrowArg(env, "xs/ys", "strictly increasing grid axes");
    const size_t ng = xs.ElementLength() * ys.ElementLength();
    if (dx.ElementLength() != ng) ThrowArg(env, "dx", "xs.length*ys.length = " + std::to_string(ng) + " elements");
    if (dy.ElementLength() != ng) ThrowArg(env, "dy", "xs.length*ys.length = " + std::to_string(ng) + " elements");
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
    try {
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
    } catch (const std::exception& e) {
      SetError(std::string("native deformation failed: ") + e.what());
    }
  }

 private:
  fi::DeformInput base_;
  const float* src_[2] = {nullptr, nullptr};
  const float* coef_[2] = {nullptr, nullptr};
  const uint8_t* valid_ptr_[2] = {nullptr, nullptr};
  float* dst_[2] = {nullptr, nullptr};
  int ny_ = 0, nx_ = 0;
  int threads_;
};

Napi::Value DeformPair(const Napi::CallbackInfo& info) {
  return QueueWorker<DeformWorker>(info, "the deformation description", ThreadsArg(info, 1));
}

// Thin-plate-spline smoothing of a scattered field on libuv's pool (tps.h).
class TpsWorker : public PromiseWorker {
 public:
  TpsWorker(Napi::Env env, Napi::Object args, int threads)
      : PromiseWorker(env), threads_(threads) {
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
    try {
      fi::TpsSmooth(in_, xn_, yn_, m_, un_, vn_, &out_, threads_);
      std::copy(out_.u_smooth.begin(), out_.u_smooth.end(), us_);
      std::copy(out_.v_smooth.begin(), out_.v_smooth.end(), vs_);
    } catch (const std::exception& e) {
      SetError(std::string("native TPS failed: ") + e.what());
    }
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
  int threads_;
};

Napi::Value TpsSmooth(const Napi::CallbackInfo& info) {
  return QueueWorker<TpsWorker>(info, "the TPS description", ThreadsArg(info, 1));
}

Napi::Value TimeFftOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    ThrowArg(env, "timeFftOnly(height, width, count)", "three numbers");
  const int ny = info[0].As<Napi::Number>().Int32Value(), nx = info[1].As<Napi::Number>().Int32Value();
  const int count = info[2].As<Napi::Number>().Int32Value();
  if (ny < 4 || nx < 4 || count < 1) ThrowArg(env, "timeFftOnly(height, width, count)", "height, width >= 4 and count >= 1");
  return Napi::Number::New(env, fi::TimeFftOnly(ny, nx, count));
}

Napi::Value SetPlannerEffort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString() || !fi::SetPlannerEffort(info[0].As<Napi::String>()))
    ThrowArg(env, "effort", "'estimate', 'measure' or 'patient'");
  return env.Undefined();
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

// Normalised median residuals of a pass (fix.h), synchronous: about 1 ms for 16k vectors.
Napi::Value MedianResiduals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowArg(env, "the field description", "an object");
  Napi::Object args = info[0].As<Napi::Object>();
  Napi::Float32Array dx = GetTyped<Napi::Float32Array>(args, "dx", napi_float32_array, "Float32Array");
  Napi::Float32Array dy = GetTyped<Napi::Float32Array>(args, "dy", napi_float32_array, "Float32Array");
  const int ny = GetPositiveInt(args, "ny"), nx = GetPositiveInt(args, "nx");
  const double eps = GetNumber(args, "epsilon");
  const size_t n = static_cast<size_t>(ny) * nx;
  if (dx.ElementLength() != n || dy.ElementLength() != n) ThrowArg(env, "dx/dy", "ny*nx = " + std::to_string(n) + " elements each");
  if (!(eps > 0)) ThrowArg(env, "epsilon", "a positive number");
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  fi::MedianResiduals(dx.Data(), dy.Data(), ny, nx, eps, out.Data());
  return out;
}

// Decodes a grey 8/16-bit PNG (png.h) on libuv's pool into `out`; the promise gives ""
// when done, else why the fast path declined (the caller then reads the file with sharp).
class PngWorker : public Napi::AsyncWorker {
 public:
  PngWorker(Napi::Env env, Napi::Uint8Array file, Napi::TypedArray out, const fi::GreyPngHeader& header)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), header_(header),
        as_float_(out.TypedArrayType() == napi_float32_array),
        file_(file.Data()), size_(file.ByteLength()), out_(static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset()) {
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("file", file);
    keep_.Set("out", out);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { reason_ = fi::DecodeGreyPng(file_, size_, header_, out_, as_float_); }
  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), reason_)); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(MakeError(Env(), "ERR_FLUIDIMAGE_NATIVE", e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  fi::GreyPngHeader header_;
  bool as_float_;
  const uint8_t* file_;
  size_t size_;
  uint8_t* out_;
  std::string reason_;
};

// Argument `index` as a Uint8Array (argument `name` in the message otherwise).
Napi::Uint8Array Uint8Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowArg(info.Env(), name, "a Uint8Array");
  return info[index].As<Napi::Uint8Array>();
}

Napi::Value DecodeGreyPng(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array file = Uint8Arg(info, 0, "file");
  fi::GreyPngHeader header;
  if (!fi::ReadGreyPngHeader(file.Data(), file.ByteLength(), &header))
    ThrowArg(env, "file", "the bytes of a grey 8/16-bit non-interlaced PNG (check pngHeader first)");
  const napi_typedarray_type stored = header.bit_depth == 8 ? napi_uint8_array : napi_uint16_array;
  const size_t n = static_cast<size_t>(header.width) * header.height;
  const bool typed = info.Length() > 1 && info[1].IsTypedArray();
  const napi_typedarray_type type = typed ? info[1].As<Napi::TypedArray>().TypedArrayType() : stored;
  if (!typed || (type != stored && type != napi_float32_array) ||
      info[1].As<Napi::TypedArray>().ElementLength() != n)
    ThrowArg(env, "out", std::string(header.bit_depth == 8 ? "a Uint8Array" : "a Uint16Array") + " or a Float32Array of width*height = " +
                             std::to_string(n) + " elements");
  auto* worker = new PngWorker(env, file, info[1].As<Napi::TypedArray>(), header);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// {width, height, bitDepth} when the bytes start like a PNG the fast path takes, else null.
Napi::Value PngHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array head = Uint8Arg(info, 0, "head");
  fi::GreyPngHeader header;
  if (fi::PngInflateLibrary()[0] == '\0' || !fi::ReadGreyPngHeader(head.Data(), head.ByteLength(), &header)) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("width", Napi::Number::New(env, header.width));
  o.Set("height", Napi::Number::New(env, header.height));
  o.Set("bitDepth", Napi::Number::New(env, header.bit_depth));
  return o;
}

Napi::Value PathArgCall(const Napi::CallbackInfo& info, bool (*fn)(const std::string&)) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowArg(env, "path", "a string");
  return Napi::Boolean::New(env, fn(info[0].As<Napi::String>()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("correlatePass", Napi::Function::New(env, CorrelatePass));
  exports.Set("deformPair", Napi::Function::New(env, DeformPair));
  exports.Set("splinePair", Napi::Function::New(env, SplinePair));
  exports.Set("decodeGreyPng", Napi::Function::New(env, DecodeGreyPng));
  exports.Set("pngHeader", Napi::Function::New(env, PngHeader));
  exports.Set("pngInflate", Napi::String::New(env, fi::PngInflateLibrary()));
  exports.Set("deformKernel", Napi::String::New(env, fi::DeformKernelName()));
  exports.Set("tpsSmooth", Napi::Function::New(env, TpsSmooth));
  exports.Set("medianResiduals", Napi::Function::New(env, MedianResiduals));
  exports.Set("timeFftOnly", Napi::Function::New(env, TimeFftOnly));
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
  InitMpi(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(fluidimage_native, Init)
