// Node-API bindings of the grey PNG fast path (png.h).
#include <cstdint>
#include <string>

#include "binding.h"
#include "png.h"

namespace binding {
namespace {

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

}  // namespace

void InitPngBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("decodeGreyPng", Napi::Function::New(env, DecodeGreyPng));
  exports.Set("pngHeader", Napi::Function::New(env, PngHeader));
  exports.Set("pngInflate", Napi::String::New(env, fi::PngInflateLibrary()));
}

}  // namespace binding
