// What the Node-API binding files (bind_*.cc) share: coded errors, argument checks with
// their messages, a promise-returning worker on libuv's pool, and splitting work over
// threads. Each bind_*.cc registers its functions with its Init*Bindings (addon.cc calls them).
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace binding {

void InitCorrelBindings(Napi::Env env, Napi::Object exports);
void InitDeformBindings(Napi::Env env, Napi::Object exports);
void InitPngBindings(Napi::Env env, Napi::Object exports);
void InitRuntimeBindings(Napi::Env env, Napi::Object exports);
void InitUncertaintyBindings(Napi::Env env, Napi::Object exports);

// Error with a Node-style `code`, thrown back to JS as an exception.
inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& msg, bool type = false) {
  Napi::Error err = type ? Napi::TypeError::New(env, msg) : Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

[[noreturn]] inline void ThrowArg(Napi::Env env, const std::string& name, const std::string& expected) {
  throw MakeError(env, "ERR_INVALID_ARG_TYPE", "Expected " + expected + " for " + name, true);
}

inline double GetNumber(Napi::Object o, const char* name, bool optional = false, double def = 0) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() && optional) return def;
  if (!v.IsNumber()) ThrowArg(o.Env(), name, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int GetPositiveInt(Napi::Object o, const char* name) {
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

// Property `name` of `o` as a Float32Array.
inline Napi::Float32Array Float32Arg(Napi::Object o, const char* name) {
  return GetTyped<Napi::Float32Array>(o, name, napi_float32_array, "Float32Array");
}

// Throws unless `a` has `n` elements; `what` says how n is made ("height*width").
inline void RequireElements(const Napi::TypedArray& a, size_t n, const std::string& name, const char* what) {
  if (a.ElementLength() != n) ThrowArg(a.Env(), name, std::string(what) + " = " + std::to_string(n) + " elements");
}

// An AsyncWorker whose promise settles with a "result" object prepared on the JS thread
// (typed arrays that Execute fills in place), keeping the inputs alive meanwhile; Execute
// may use up to `threads_` threads.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  PromiseWorker(Napi::Env env, int threads)
      : Napi::AsyncWorker(env), threads_(threads), deferred_(Napi::Promise::Deferred::New(env)) {}
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
  // Runs fn in Execute; an exception rejects the promise with "native <what> failed: ...".
  template <typename F>
  void Guarded(const char* what, F fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      SetError(std::string("native ") + what + " failed: " + e.what());
    }
  }

  const int threads_;

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
};

inline int ThreadsArg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return 1;
  if (!info[index].IsNumber()) ThrowArg(info.Env(), "threads", "a number");
  return std::max(1, std::min(256, info[index].As<Napi::Number>().Int32Value()));
}

// Starts a worker W(env, description, threads) for `fn(description, threads?)` and returns
// its promise; `what` names the description in errors.
template <typename W>
Napi::Value QueueWorker(const Napi::CallbackInfo& info, const char* what) {
  Napi::Env env = info.Env();
  const int threads = ThreadsArg(info, 1);
  if (info.Length() < 1 || !info[0].IsObject()) ThrowArg(env, what, "an object");
  auto* worker = new W(env, info[0].As<Napi::Object>(), threads);
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

}  // namespace binding
