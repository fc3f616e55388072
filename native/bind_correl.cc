// Node-API bindings of the correlation of a pass (correl.h, with its FFT timing) and of the normalised median
// residuals (fix.h).
#include <algorithm>
#include <mutex>
#include <string>

#include "binding.h"
#include "correl.h"
#include "fix.h"

namespace binding {
namespace {

// Correlates every window of one pass of one pair on libuv's pool (optionally split
// over several threads) and fills output typed arrays allocated on the JS thread, so
// results cross the boundary without a copy.
// The windows, search and fit of a pass description (everything but the images).
void ParsePassGeometry(Napi::Env env, Napi::Object args, fi::PassInput* in) {
  fi::PassInput& in_ = *in;
  Napi::Int32Array s0 = GetTyped<Napi::Int32Array>(args, "starts0", napi_int32_array, "Int32Array");
  Napi::Int32Array s1 = GetTyped<Napi::Int32Array>(args, "starts1", napi_int32_array, "Int32Array");
  in_.ny = GetPositiveInt(args, "height");
  in_.nx = GetPositiveInt(args, "width");
  in_.h0 = GetPositiveInt(args, "h0");
  in_.w0 = GetPositiveInt(args, "w0");
  in_.h1 = GetPositiveInt(args, "h1");
  in_.w1 = GetPositiveInt(args, "w1");
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
  in_.starts0 = s0.Data();
  in_.starts1 = s1.Data();
}

// The summed planes of an ensemble (`planes`: n*H*W values, `planeCounts`: n), checked
// against the pass geometry; H and W are the larger window sides.
void ParsePlanes(Napi::Object args, const fi::PassInput& in, float** planes, float** counts) {
  Napi::Float32Array p = Float32Arg(args, "planes");
  Napi::Float32Array c = Float32Arg(args, "planeCounts");
  const size_t plane = static_cast<size_t>(std::max(in.h0, in.h1)) * std::max(in.w0, in.w1);
  RequireElements(p, static_cast<size_t>(in.n) * plane, "planes", "windows*max(h0,h1)*max(w0,w1)");
  RequireElements(c, static_cast<size_t>(in.n), "planeCounts", "windows");
  *planes = p.Data();
  *counts = c.Data();
}

// Output arrays of a pass (allocated on the JS thread, filled in place by the pool).
Napi::Object MakePassOutput(Napi::Env env, const fi::PassInput& in, bool peak_to_mean, fi::PassOutput* out) {
  Napi::Float32Array dx = Napi::Float32Array::New(env, in.n);
  Napi::Float32Array dy = Napi::Float32Array::New(env, in.n);
  Napi::Float32Array correl = Napi::Float32Array::New(env, in.n);
  Napi::Uint8Array code = Napi::Uint8Array::New(env, in.n);
  const size_t n2 = static_cast<size_t>(in.n) * (in.nb_peaks - 1);
  Napi::Float32Array dx2 = Napi::Float32Array::New(env, n2);
  Napi::Float32Array dy2 = Napi::Float32Array::New(env, n2);
  Napi::Float32Array correl2 = Napi::Float32Array::New(env, n2);
  *out = {dx.Data(), dy.Data(), correl.Data(), code.Data(), dx2.Data(), dy2.Data(), correl2.Data()};
  Napi::Float32Array p2m = Napi::Float32Array::New(env, peak_to_mean ? in.n : 0);
  if (peak_to_mean) out->peak_to_mean = p2m.Data();
  Napi::Object result = Napi::Object::New(env);
  result.Set("dx", dx);
  result.Set("dy", dy);
  result.Set("correl", correl);
  result.Set("code", code);
  result.Set("dx2", dx2);
  result.Set("dy2", dy2);
  result.Set("correl2", correl2);
  if (peak_to_mean) result.Set("peakToMean", p2m);
  return result;
}

bool Flag(Napi::Object args, const char* name) { return args.Has(name) && args.Get(name).ToBoolean(); }

class CorrelWorker : public PromiseWorker {
 public:
  CorrelWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    Napi::Float32Array im0 = Float32Arg(args, "im0");
    Napi::Float32Array im1 = Float32Arg(args, "im1");
    ParsePassGeometry(env, args, &in_);
    const size_t npix = static_cast<size_t>(in_.ny) * in_.nx;
    RequireElements(im0, npix, "im0", "height*width");
    RequireElements(im1, npix, "im1", "height*width");
    in_.im0 = im0.Data();
    in_.im1 = im1.Data();
    // Peak-to-mean ratios only when asked (fix.s2n_peak_to_mean_min: one more pass over each plane).
    Napi::Object result = MakePassOutput(env, in_, Flag(args, "peakToMean"), &out_);
    // Ensemble correlation: this pair's planes added to the caller's sums.
    if (args.Has("planes")) ParsePlanes(args, in_, &out_.planes, &out_.planes_count);
    profile_ = Flag(args, "profile");
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
    Guarded("correlation", [&] {
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
    });
  }

 private:
  fi::PassInput in_;
  fi::PassOutput out_;
  bool profile_ = false;
  fi::PassPhases phases_;
  std::mutex phases_mutex_;
};

Napi::Value CorrelatePass(const Napi::CallbackInfo& info) {
  return QueueWorker<CorrelWorker>(info, "the pass description");
}

// Peaks of an ensemble's summed planes (correl.h PeaksOnPlanes) on libuv's pool.
class PlanesWorker : public PromiseWorker {
 public:
  PlanesWorker(Napi::Env env, Napi::Object args, int threads) : PromiseWorker(env, threads) {
    ParsePassGeometry(env, args, &in_);
    Napi::Object result = MakePassOutput(env, in_, Flag(args, "peakToMean"), &out_);
    ParsePlanes(args, in_, &planes_, &counts_);
    Keep(args, result);
  }

 protected:
  void Execute() override {
    Guarded("ensemble peaks", [&] {
      ForChunks(in_.n, std::min(threads_, in_.n / 16), 1,
                [this](int b, int e) { fi::PeaksOnPlanes(in_, planes_, counts_, out_, b, e); });
    });
  }

 private:
  fi::PassInput in_;
  fi::PassOutput out_;
  float* planes_ = nullptr;
  float* counts_ = nullptr;
};

Napi::Value PeaksOnPlanes(const Napi::CallbackInfo& info) {
  return QueueWorker<PlanesWorker>(info, "the pass description");
}

// Normalised median residuals of a pass (fix.h), synchronous: about 1 ms for 16k vectors.
Napi::Value MedianResiduals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowArg(env, "the field description", "an object");
  Napi::Object args = info[0].As<Napi::Object>();
  Napi::Float32Array dx = Float32Arg(args, "dx");
  Napi::Float32Array dy = Float32Arg(args, "dy");
  const int ny = GetPositiveInt(args, "ny"), nx = GetPositiveInt(args, "nx");
  const double eps = GetNumber(args, "epsilon");
  const size_t n = static_cast<size_t>(ny) * nx;
  if (dx.ElementLength() != n || dy.ElementLength() != n) ThrowArg(env, "dx/dy", "ny*nx = " + std::to_string(n) + " elements each");
  if (!(eps > 0)) ThrowArg(env, "epsilon", "a positive number");
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  fi::MedianResiduals(dx.Data(), dy.Data(), ny, nx, eps, out.Data());
  return out;
}

// The FFT work alone of a pass of `count` windows of height x width (correl.h): seconds,
// for benchmarks.
Napi::Value TimeFftOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    ThrowArg(env, "timeFftOnly(height, width, count)", "three numbers");
  const int ny = info[0].As<Napi::Number>().Int32Value(), nx = info[1].As<Napi::Number>().Int32Value();
  const int count = info[2].As<Napi::Number>().Int32Value();
  if (ny < 4 || nx < 4 || count < 1) ThrowArg(env, "timeFftOnly(height, width, count)", "height, width >= 4 and count >= 1");
  return Napi::Number::New(env, fi::TimeFftOnly(ny, nx, count));
}

}  // namespace

void InitCorrelBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("correlatePass", Napi::Function::New(env, CorrelatePass));
  exports.Set("peaksOnPlanes", Napi::Function::New(env, PeaksOnPlanes));
  exports.Set("medianResiduals", Napi::Function::New(env, MedianResiduals));
  exports.Set("timeFftOnly", Napi::Function::New(env, TimeFftOnly));
}

}  // namespace binding
