// MPI for the JavaScript thread. Everything here runs on the JS thread; blocking calls
// (send, recv, collectives) block it like mpi4py's do, and the nonblocking ones hand back
// a request that src/mpi/comm.ts polls with mpiTest() from the event loop.
//
// Conventions (src/native.ts "MPI" documents the JS side):
//  - ranks and tags are plain ints; -1 means MPI_ANY_SOURCE / MPI_ANY_TAG (their values
//    differ between MPI implementations, so the mapping happens here);
//  - point-to-point ranks and tags are range-checked in TypeScript, not here, so MPI's
//    own errors (MPI_ERR_RANK...) stay reachable through the raw binding;
//  - collectives check their arguments here, inside an agreement step that every rank
//    joins (see Agree), so that a bad argument throws on all ranks instead of hanging;
//  - receives match the message first (probe), then receive exactly it (see Recv);
//  - MPI errors come back as Error { code: 'ERR_MPI', mpiErrorClass, mpiOperation }.
#include "mpi_binding.h"  // this project's binding header (the library's is <mpi.h>)

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if FLUIDIMAGE_HAVE_MPI
#include <dlfcn.h>
#include <mpi.h>  // the MPI library's header (angle brackets: include path only)

#include <climits>
#endif

namespace {

// Every name registered on the exports, in both builds, so that the surface is the same
// with and without MPI.
const char* const kFunctions[] = {
    "mpiAvailable", "mpiLibraryVersion", "mpiInit", "mpiIsInitialized", "mpiIsFinalized",
    "mpiFinalize", "mpiAbort", "mpiBarrier", "mpiBcast", "mpiGatherv", "mpiAllreduce",
    "mpiReduce", "mpiSend", "mpiRecv", "mpiRecvBytes", "mpiIsend", "mpiIrecv",
    "mpiIrecvBytes", "mpiTest", "mpiIprobe", "mpiDeadline"};

enum class Kind { kError, kType, kRange };

Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& msg, Kind kind = Kind::kError) {
  Napi::Error err = kind == Kind::kType    ? Napi::TypeError::New(env, msg)
                    : kind == Kind::kRange ? Napi::RangeError::New(env, msg)
                                           : Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

#if !FLUIDIMAGE_HAVE_MPI

const char* const kUnavailable =
    "MPI is unavailable: the fluidimage native core was built without MPI (no MPI library was "
    "found, or FLUIDIMAGE_MPI=OFF). To run on several ranks, install an MPI (Debian/Ubuntu: "
    "apt-get install libopenmpi-dev openmpi-bin; on a cluster: module load an MPI), then "
    "rebuild the addon with `npm run build:native`.";

Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  throw CodedError(info.Env(), "ERR_MPI_UNAVAILABLE", kUnavailable);
}

#else  // FLUIDIMAGE_HAVE_MPI

// ---- process-wide state (MPI is per process; worker threads share it) ----------------
struct Global {
  int rank = 0;
  int size = 1;
  int tag_ub = 32767;
  int provided = MPI_THREAD_SINGLE;
  std::string lib_path;  // the MPI library file, found with dladdr
  bool lib_global = false;  // re-opened RTLD_GLOBAL
};
Global g;

bool Initialized() {
  int f = 0;
  MPI_Initialized(&f);
  return f != 0;
}
bool Finalized() {
  int f = 0;
  MPI_Finalized(&f);
  return f != 0;
}

// Calling MPI before MPI_Init or after MPI_Finalize aborts the process, so guard every call.
void RequireLive(Napi::Env env, const char* op) {
  if (Finalized())
    throw CodedError(env, "ERR_MPI_FINALIZED", std::string(op) + ": MPI was already finalised in this process");
  if (!Initialized())
    throw CodedError(env, "ERR_MPI_NOT_INITIALIZED", std::string(op) + ": MPI is not initialised (call world() first)");
}

Napi::Error MpiError(Napi::Env env, const char* op, int rc, const std::string& detail = "") {
  int cls = rc;
  if (MPI_Error_class(rc, &cls) != MPI_SUCCESS) cls = rc;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  std::string what;
  if (MPI_Error_string(rc, text, &len) == MPI_SUCCESS) what.assign(text, static_cast<size_t>(len));
  else what = "MPI error code " + std::to_string(rc);
  Napi::Error err = CodedError(env, "ERR_MPI", std::string(op) + " failed on rank " + std::to_string(g.rank) +
                                                   " of " + std::to_string(g.size) + ": " + what + detail);
  err.Set("mpiErrorClass", Napi::Number::New(env, cls));
  err.Set("mpiOperation", Napi::String::New(env, op));
  return err;
}

void Check(Napi::Env env, int rc, const char* op) {
  if (rc != MPI_SUCCESS) throw MpiError(env, op, rc);
}

// ---- arguments ---------------------------------------------------------------------------
// Parsers report instead of throwing: collectives must still join the agreement step
// (see Agree) when a rank's own arguments are bad.
struct ArgError {
  std::string code, msg;
  Kind kind = Kind::kType;
  bool Set(const std::string& c, const std::string& m, Kind k) {
    if (msg.empty()) code = c, msg = m, kind = k;
    return false;
  }
  [[noreturn]] void Throw(Napi::Env env) const { throw CodedError(env, code, msg, kind); }
};

struct Buf {
  void* data = nullptr;
  int count = 0;
  int type = -1;  // napi_typedarray_type
  MPI_Datatype dt = MPI_DATATYPE_NULL;
};

const char* TypeName(int t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "?";
  }
}

MPI_Datatype Datatype(int t) {
  switch (t) {
    case napi_int8_array: return MPI_INT8_T;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return MPI_UINT8_T;
    case napi_int16_array: return MPI_INT16_T;
    case napi_uint16_array: return MPI_UINT16_T;
    case napi_int32_array: return MPI_INT32_T;
    case napi_uint32_array: return MPI_UINT32_T;
    case napi_float32_array: return MPI_FLOAT;
    case napi_float64_array: return MPI_DOUBLE;
    case napi_bigint64_array: return MPI_INT64_T;
    case napi_biguint64_array: return MPI_UINT64_T;
    default: return MPI_DATATYPE_NULL;
  }
}

std::string Shape(int type, int count) { return std::string(TypeName(type)) + "[" + std::to_string(count) + "]"; }

bool ParseBuf(Napi::Env env, Napi::Value v, const char* name, Buf* out, ArgError* err) {
  if (!v.IsTypedArray()) return err->Set("ERR_INVALID_ARG_TYPE", std::string("Expected a typed array for ") + name, Kind::kType);
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab;
  // The data pointer napi returns already includes the view's byte offset.
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok)
    return err->Set("ERR_INVALID_ARG_TYPE", std::string("Cannot read the typed array ") + name, Kind::kType);
  if (length > static_cast<size_t>(INT_MAX))
    return err->Set("ERR_OUT_OF_RANGE", std::string("MPI counts are 32-bit: ") + name + " has " + std::to_string(length) +
                                            " elements, more than " + std::to_string(INT_MAX), Kind::kRange);
  out->data = data;
  out->count = static_cast<int>(length);
  out->type = type;
  out->dt = Datatype(type);
  return true;
}

bool ParseInt(Napi::Value v, const char* name, int* out, ArgError* err) {
  if (!v.IsNumber()) return err->Set("ERR_INVALID_ARG_TYPE", std::string("Expected an integer for ") + name, Kind::kType);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= INT_MIN && d <= INT_MAX && d == static_cast<double>(static_cast<int>(d))))
    return err->Set("ERR_OUT_OF_RANGE", std::string("Expected a 32-bit integer for ") + name, Kind::kRange);
  *out = static_cast<int>(d);
  return true;
}

// Roots index arrays here, so they are checked here too (TypeScript checks them first).
bool ParseRoot(Napi::Value v, int* out, ArgError* err) {
  if (!ParseInt(v, "root", out, err)) return false;
  if (*out < 0 || *out >= g.size)
    return err->Set("ERR_OUT_OF_RANGE", "Expected an integer rank in [0, " + std::to_string(g.size) +
                                            ") for root but received " + std::to_string(*out), Kind::kRange);
  return true;
}

int Any(int v, int any) { return v == -1 ? any : v; }

bool ParseOp(Napi::Value v, MPI_Op* op, ArgError* err) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "sum") *op = MPI_SUM;
  else if (s == "min") *op = MPI_MIN;
  else if (s == "max") *op = MPI_MAX;
  else return err->Set("ERR_INVALID_ARG_VALUE", "Expected 'sum', 'min' or 'max' for op", Kind::kType);
  return true;
}

Napi::Value NewTyped(Napi::Env env, int type, size_t length) {
  const size_t elem = type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array ? 8
                      : type == napi_int32_array || type == napi_uint32_array || type == napi_float32_array ? 4
                      : type == napi_int16_array || type == napi_uint16_array                               ? 2
                                                                                                            : 1;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, length * elem);
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, static_cast<napi_typedarray_type>(type), length, ab, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

// ---- agreement before collectives --------------------------------------------------------
// One MPI_Allgather of (ok, root, type, count) per rank before each collective on typed
// arrays: every rank sees every rank's arguments, so a bad argument or a mismatch (type,
// length, root) makes all ranks throw together instead of some waiting forever in the
// collective (or MPI silently truncating). Costs one small allgather (microseconds).
struct Shapes {
  std::vector<int> v;
  int ok(int r) const { return v[4 * r]; }
  int root(int r) const { return v[4 * r + 1]; }
  int type(int r) const { return v[4 * r + 2]; }
  int count(int r) const { return v[4 * r + 3]; }
};

Shapes Agree(Napi::Env env, const char* op, const ArgError& err, int root, const Buf& b) {
  const int mine[4] = {err.msg.empty() ? 1 : 0, root, b.type, b.count};
  Shapes s;
  s.v.assign(4 * static_cast<size_t>(g.size), 0);
  Check(env, MPI_Allgather(mine, 4, MPI_INT, s.v.data(), 4, MPI_INT, MPI_COMM_WORLD), op);
  if (!err.msg.empty()) err.Throw(env);
  for (int r = 0; r < g.size; ++r)
    if (!s.ok(r))
      throw CodedError(env, "ERR_MPI_MISMATCH", std::string(op) + " not done: rank " + std::to_string(r) +
                                                    " passed invalid arguments (its own error says which)");
  for (int r = 0; r < g.size; ++r)
    if (s.root(r) != root)
      throw CodedError(env, "ERR_MPI_MISMATCH", std::string(op) + ": the ranks disagree on the root (rank " +
                                                    std::to_string(g.rank) + " says " + std::to_string(root) + ", rank " +
                                                    std::to_string(r) + " says " + std::to_string(s.root(r)) + ")");
  return s;
}

// All ranks must pass the same element type, and also the same length when `same_count`.
void RequireSame(Napi::Env env, const char* op, const Shapes& s, int ref, bool same_count) {
  for (int r = 0; r < g.size; ++r) {
    if (s.type(r) != s.type(ref) || (same_count && s.count(r) != s.count(ref)))
      throw CodedError(env, "ERR_MPI_MISMATCH",
                       std::string(op) + ": every rank must pass " + (same_count ? "the same type and length" : "the same type") +
                           ", but rank " + std::to_string(ref) + " passed " + Shape(s.type(ref), s.count(ref)) +
                           " and rank " + std::to_string(r) + " passed " + Shape(s.type(r), s.count(r)));
  }
}

// ---- init / finalize / abort ---------------------------------------------------------------
const char* LevelName(int level) {
  if (level == MPI_THREAD_MULTIPLE) return "multiple";
  if (level == MPI_THREAD_SERIALIZED) return "serialized";
  if (level == MPI_THREAD_FUNNELED) return "funneled";
  return "single";
}

Napi::Value Info(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", g.rank);
  o.Set("size", g.size);
  o.Set("threadLevel", LevelName(g.provided));
  o.Set("tagUb", g.tag_ub);
  o.Set("libraryPath", g.lib_path);
  o.Set("libraryGlobal", g.lib_global);
  return o;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Finalized()) throw CodedError(env, "ERR_MPI_FINALIZED", "MPI_Init_thread: MPI was already finalised; it cannot be initialised twice");
  if (!Initialized()) {
    // Node loads addons RTLD_LOCAL, so libmpi's symbols are invisible to plugins that MPI
    // implementations dlopen later (older Open MPI components, some fabric providers).
    // Re-opening the library RTLD_GLOBAL makes them visible; harmless where not needed.
    Dl_info dl;
    if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &dl) != 0 && dl.dli_fname != nullptr) {
      g.lib_path = dl.dli_fname;
      g.lib_global = dlopen(dl.dli_fname, RTLD_NOW | RTLD_GLOBAL) != nullptr;
    }
    // Errors of MPI_Init itself use the default handler (abort): nothing to check after.
    int provided = MPI_THREAD_SINGLE;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    g.provided = provided;
  } else {
    MPI_Query_thread(&g.provided);
  }
  // From now on, errors come back as return codes, which we turn into JS exceptions.
  Check(env, MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  Check(env, MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  Check(env, MPI_Comm_rank(MPI_COMM_WORLD, &g.rank), "MPI_Comm_rank");
  Check(env, MPI_Comm_size(MPI_COMM_WORLD, &g.size), "MPI_Comm_size");
  void* ub = nullptr;
  int flag = 0;
  Check(env, MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag), "MPI_Comm_get_attr");
  if (flag && ub) g.tag_ub = *static_cast<int*>(ub);
  return Info(env);
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  if (!Initialized() || Finalized()) return Napi::Boolean::New(info.Env(), false);
  Check(info.Env(), MPI_Finalize(), "MPI_Finalize");
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = 1;
  if (info.Length() > 0 && info[0].IsNumber()) code = info[0].As<Napi::Number>().Int32Value();
  const std::string msg = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  // stdio, not process.stderr: nothing may stay buffered in JS when the process dies.
  if (!msg.empty()) std::fprintf(stderr, "%s\n", msg.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  if (Initialized() && !Finalized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code != 0 ? code : 1);
}

// A deadline for blocking phases (collectives, MPI_Finalize): the JS thread blocked in MPI
// cannot notice that a rank went silent, so a thread of its own ends the job when the
// deadline passes before the phase is over. Leaked on purpose: the thread may outlive
// static destructors at exit.
struct Deadline {
  std::mutex m;
  std::condition_variable cv;
  bool armed = false;
  bool started = false;
  std::chrono::steady_clock::time_point at;
  int code = 1;
  std::string message;
};

Deadline& TheDeadline() {
  static Deadline* d = new Deadline();
  return *d;
}

void WatchDeadline() {
  Deadline& d = TheDeadline();
  std::unique_lock<std::mutex> lock(d.m);
  for (;;) {
    if (!d.armed) {
      d.cv.wait(lock);
      continue;
    }
    d.cv.wait_until(lock, d.at);
    if (d.armed && std::chrono::steady_clock::now() >= d.at) {
      std::fprintf(stderr, "%s\n", d.message.c_str());
      std::fflush(stderr);
      if (Initialized() && !Finalized()) MPI_Abort(MPI_COMM_WORLD, d.code);
      std::_Exit(d.code != 0 ? d.code : 1);
    }
  }
}

// mpiDeadline(seconds, code, message): arms (seconds > 0) or disarms (0) the deadline.
Napi::Value SetDeadline(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString()) {
    throw CodedError(env, "ERR_INVALID_ARG_TYPE", "mpiDeadline(seconds, code, message) expects a number, a number and a string", Kind::kType);
  }
  const double seconds = info[0].As<Napi::Number>().DoubleValue();
  if (!(seconds >= 0 && seconds <= 1e7)) throw CodedError(env, "ERR_OUT_OF_RANGE", "Expected seconds in [0, 1e7] for mpiDeadline", Kind::kRange);
  Deadline& d = TheDeadline();
  {
    std::lock_guard<std::mutex> lock(d.m);
    d.armed = seconds > 0;
    if (d.armed) {
      d.at = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<long long>(seconds * 1e6));
      d.code = info[1].As<Napi::Number>().Int32Value();
      d.message = info[2].As<Napi::String>().Utf8Value();
      if (!d.started) {
        d.started = true;
        std::thread(WatchDeadline).detach();
      }
    }
  }
  d.cv.notify_all();
  return env.Undefined();
}

Napi::Value LibraryVersion(const Napi::CallbackInfo& info) {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  Check(info.Env(), MPI_Get_library_version(text, &len), "MPI_Get_library_version");
  std::string s(text, static_cast<size_t>(len));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return Napi::String::New(info.Env(), s);
}

// ---- collectives ------------------------------------------------------------------------------
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  RequireLive(info.Env(), "MPI_Barrier");
  Check(info.Env(), MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return info.Env().Undefined();
}

// mpiBcast(buf, root): in place; every rank passes an array of the root's type and length.
Napi::Value Bcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "MPI_Bcast";
  RequireLive(env, op);
  ArgError err;
  Buf b;
  int root = 0;
  ParseBuf(env, info[0], "buffer", &b, &err) && ParseRoot(info[1], &root, &err);
  const Shapes s = Agree(env, op, err, root, b);
  RequireSame(env, op, s, root, true);
  Check(env, MPI_Bcast(b.data, b.count, b.dt, root, MPI_COMM_WORLD), op);
  return info[0];
}

// mpiGatherv(data, root): root gets { data (all ranks' arrays, in rank order), counts }.
Napi::Value Gatherv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "MPI_Gatherv";
  RequireLive(env, op);
  ArgError err;
  Buf b;
  int root = 0;
  ParseBuf(env, info[0], "data", &b, &err) && ParseRoot(info[1], &root, &err);
  const Shapes s = Agree(env, op, err, root, b);
  RequireSame(env, op, s, root, false);
  std::vector<int> counts(g.size), displs(g.size);
  long long total = 0;
  for (int r = 0; r < g.size; ++r) {
    counts[r] = s.count(r);
    displs[r] = static_cast<int>(total);
    total += s.count(r);
    if (total > INT_MAX)  // every rank sees the same counts: all throw together
      throw CodedError(env, "ERR_OUT_OF_RANGE", std::string(op) + ": more than " + std::to_string(INT_MAX) +
                                                    " elements in all; MPI displacements are 32-bit", Kind::kRange);
  }
  if (g.rank != root) {
    Check(env, MPI_Gatherv(b.data, b.count, b.dt, nullptr, nullptr, nullptr, b.dt, root, MPI_COMM_WORLD), op);
    return env.Undefined();
  }
  Napi::Value out = NewTyped(env, b.type, static_cast<size_t>(total));
  Buf o;
  ArgError unused;
  ParseBuf(env, out, "result", &o, &unused);
  Check(env, MPI_Gatherv(b.data, b.count, b.dt, o.data, counts.data(), displs.data(), b.dt, root, MPI_COMM_WORLD), op);
  Napi::Int32Array c = Napi::Int32Array::New(env, g.size);
  for (int r = 0; r < g.size; ++r) c[r] = counts[r];
  Napi::Object res = Napi::Object::New(env);
  res.Set("data", out);
  res.Set("counts", c);
  return res;
}

// Shared by allreduce and reduce: `out` is written on `root` (every rank for allreduce);
// `out` may be the input array itself (MPI_IN_PLACE).
Napi::Value Reduction(const Napi::CallbackInfo& info, bool all) {
  Napi::Env env = info.Env();
  const char* op = all ? "MPI_Allreduce" : "MPI_Reduce";
  RequireLive(env, op);
  ArgError err;
  Buf in, out;
  MPI_Op mop = MPI_SUM;
  int root = 0;
  bool ok = ParseBuf(env, info[0], "data", &in, &err) && ParseOp(info[2], &mop, &err) &&
            (all || ParseRoot(info[3], &root, &err));
  if (ok && in.type == napi_uint8_clamped_array)
    ok = err.Set("ERR_INVALID_ARG_TYPE", "Uint8ClampedArray cannot be reduced (MPI sums wrap around, they do not clamp)", Kind::kType);
  const bool writes = all || g.rank == root;
  if (ok && writes) {
    ok = ParseBuf(env, info[1], "out", &out, &err);
    if (ok && (out.type != in.type || out.count != in.count))
      ok = err.Set("ERR_INVALID_ARG_VALUE", std::string(op) + ": out must be a " + Shape(in.type, in.count) +
                                                " like data, but it is a " + Shape(out.type, out.count), Kind::kType);
    const char* ib = static_cast<const char*>(in.data);
    const char* ob = static_cast<const char*>(out.data);
    int esize = 0;
    if (ok) MPI_Type_size(in.dt, &esize);
    const size_t bytes = static_cast<size_t>(in.count) * static_cast<size_t>(esize);
    if (ok && ib != ob && ib < ob + bytes && ob < ib + bytes)
      ok = err.Set("ERR_INVALID_ARG_VALUE", std::string(op) + ": out overlaps data without being the same array", Kind::kType);
  }
  const Shapes s = Agree(env, op, err, root, in);
  RequireSame(env, op, s, root, true);
  const void* send = writes && in.data == out.data && in.count > 0 ? MPI_IN_PLACE : in.data;
  if (all) Check(env, MPI_Allreduce(send, out.data, in.count, in.dt, mop, MPI_COMM_WORLD), op);
  else Check(env, MPI_Reduce(send, writes ? out.data : nullptr, in.count, in.dt, mop, root, MPI_COMM_WORLD), op);
  return writes ? info[1] : env.Undefined();
}

// ---- point to point -----------------------------------------------------------------------------
Napi::Object StatusObject(Napi::Env env, const MPI_Status& st, MPI_Datatype dt) {
  int count = 0;
  MPI_Get_count(&st, dt, &count);
  Napi::Object o = Napi::Object::New(env);
  o.Set("source", st.MPI_SOURCE);
  o.Set("tag", st.MPI_TAG);
  o.Set("count", count == MPI_UNDEFINED ? -1 : count);
  return o;
}

void ParseP2P(const Napi::CallbackInfo& info, const char* peer_name, Buf* b, int* peer, int* tag) {
  ArgError err;
  if (!(ParseBuf(info.Env(), info[0], "buffer", b, &err) && ParseInt(info[1], peer_name, peer, &err) &&
        ParseInt(info[2], "tag", tag, &err)))
    err.Throw(info.Env());
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Send");
  Buf b;
  int dest = 0, tag = 0;
  ParseP2P(info, "dest", &b, &dest, &tag);
  Check(env, MPI_Send(b.data, b.count, b.dt, dest, tag, MPI_COMM_WORLD), "MPI_Send");
  return env.Undefined();
}

// Receives into typed arrays always match the message first (MPI_Mprobe/Improbe) and
// post the receive for exactly that message (MPI_Mrecv/Imrecv). Why: Open MPI 4.1's
// shared-memory single-copy path (vader + CMA) ignores the receive count for large
// messages, so a too-small buffer is overrun (heap corruption, segfaults) instead of
// failing with MPI_ERR_TRUNCATE. Knowing the size first, a message that does not fit is
// received into scratch memory and reported as MPI_ERR_TRUNCATE, as MPI specifies.
// The matched-probe pair is also what makes probe-then-receive safe with threads.
std::string TruncationDetail(int bytes, size_t capacity) {
  return " (a message of " + std::to_string(bytes) + " bytes for a buffer of " + std::to_string(capacity) + " bytes)";
}

size_t ByteLength(const Buf& b) {
  int esize = 0;
  MPI_Type_size(b.dt, &esize);
  return static_cast<size_t>(b.count) * static_cast<size_t>(esize);
}

int MessageBytes(Napi::Env env, const MPI_Status& st) {
  int bytes = 0;
  Check(env, MPI_Get_count(&st, MPI_BYTE, &bytes), "MPI_Get_count");
  return bytes;
}

// mpiRecv(buf, source, tag): receives into buf (zero copy); returns the status.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Recv");
  Buf b;
  int source = 0, tag = 0;
  ParseP2P(info, "source", &b, &source, &tag);
  MPI_Message msg;
  MPI_Status st;
  Check(env, MPI_Mprobe(Any(source, MPI_ANY_SOURCE), Any(tag, MPI_ANY_TAG), MPI_COMM_WORLD, &msg, &st), "MPI_Recv");
  const int bytes = MessageBytes(env, st);
  if (static_cast<size_t>(bytes) > ByteLength(b)) {
    std::vector<char> scratch(static_cast<size_t>(bytes));
    Check(env, MPI_Mrecv(scratch.data(), bytes, MPI_BYTE, &msg, &st), "MPI_Recv");
    throw MpiError(env, "MPI_Recv", MPI_ERR_TRUNCATE, TruncationDetail(bytes, ByteLength(b)));
  }
  Check(env, MPI_Mrecv(b.data, b.count, b.dt, &msg, &st), "MPI_Recv");
  return StatusObject(env, st, b.dt);
}

// mpiRecvBytes(source, tag): a message of unknown size as a new Uint8Array.
Napi::Value RecvBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Recv");
  ArgError err;
  int source = 0, tag = 0;
  if (!(ParseInt(info[0], "source", &source, &err) && ParseInt(info[1], "tag", &tag, &err))) err.Throw(env);
  MPI_Message msg;
  MPI_Status st;
  Check(env, MPI_Mprobe(Any(source, MPI_ANY_SOURCE), Any(tag, MPI_ANY_TAG), MPI_COMM_WORLD, &msg, &st), "MPI_Recv");
  const int n = MessageBytes(env, st);
  Napi::Uint8Array data = Napi::Uint8Array::New(env, static_cast<size_t>(n));
  Check(env, MPI_Mrecv(data.Data(), n, MPI_UINT8_T, &msg, &st), "MPI_Recv");
  Napi::Object o = StatusObject(env, st, MPI_UINT8_T);
  o.Set("data", data);
  return o;
}

Napi::Value Iprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Iprobe");
  ArgError err;
  int source = 0, tag = 0;
  if (!(ParseInt(info[0], "source", &source, &err) && ParseInt(info[1], "tag", &tag, &err))) err.Throw(env);
  int flag = 0;
  MPI_Status st;
  Check(env, MPI_Iprobe(Any(source, MPI_ANY_SOURCE), Any(tag, MPI_ANY_TAG), MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
  if (!flag) return env.Undefined();
  Napi::Object o = StatusObject(env, st, MPI_UINT8_T);
  o.Set("bytes", o.Get("count"));
  o.Delete("count");
  return o;
}

// ---- nonblocking --------------------------------------------------------------------------------
// A pending operation. `keep` pins the typed array MPI reads or writes until the request
// completes (a persistent reference: GC may neither free nor move it meanwhile).
// Receives start unmatched: mpiTest polls MPI_Improbe, then posts MPI_Imrecv for the
// matched message (see the note above Recv).
struct Req {
  enum Type { kSend, kRecv, kRecvBytes } type = kSend;
  MPI_Request req = MPI_REQUEST_NULL;
  bool matched = false;  // receives: the message is matched and its MPI_Imrecv posted
  bool done = false;
  int peer = 0, tag = 0, count = 0;  // send: dest, tag, count; receive: the pattern
  Buf buf;                   // kSend, kRecv: the pinned array
  std::vector<char> scratch;  // kRecv: a message too long for buf lands here
  int truncated_bytes = -1;
  Napi::Reference<Napi::Value> keep;
};

// Distinguishes our externals from any other external a caller could pass to mpiTest.
const napi_type_tag kReqTag = {0x6a1b2c3d4e5f6071ULL, 0x8192a3b4c5d6e7f8ULL};

Napi::Value WrapReq(Napi::Env env, Req* r) {
  // Freed by GC once complete. A request dropped while pending is leaked on purpose: MPI
  // may still write into the buffer it pins. (src/mpi/comm.ts keeps pending ones anyway.)
  auto ext = Napi::External<Req>::New(env, r, [](Napi::Env, Req* q) {
    if (q->done) delete q;
  });
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, ext, &kReqTag), Napi::Value());
  return ext;
}

Napi::Value Isend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Isend");
  auto* r = new Req;
  try {
    ParseP2P(info, "dest", &r->buf, &r->peer, &r->tag);
    r->count = r->buf.count;
    Check(env, MPI_Isend(r->buf.data, r->buf.count, r->buf.dt, r->peer, r->tag, MPI_COMM_WORLD, &r->req), "MPI_Isend");
  } catch (...) {
    delete r;
    throw;
  }
  r->keep = Napi::Persistent(info[0]);
  return WrapReq(env, r);
}

Napi::Value Irecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Irecv");
  auto* r = new Req;
  try {
    ParseP2P(info, "source", &r->buf, &r->peer, &r->tag);
  } catch (...) {
    delete r;
    throw;
  }
  r->type = Req::kRecv;
  r->peer = Any(r->peer, MPI_ANY_SOURCE);
  r->tag = Any(r->tag, MPI_ANY_TAG);
  r->keep = Napi::Persistent(info[0]);
  return WrapReq(env, r);
}

// mpiIrecvBytes(source, tag): like mpiRecvBytes, without blocking.
Napi::Value IrecvBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireLive(env, "MPI_Irecv");
  ArgError err;
  int source = 0, tag = 0;
  if (!(ParseInt(info[0], "source", &source, &err) && ParseInt(info[1], "tag", &tag, &err))) err.Throw(env);
  auto* r = new Req;
  r->type = Req::kRecvBytes;
  r->peer = Any(source, MPI_ANY_SOURCE);
  r->tag = Any(tag, MPI_ANY_TAG);
  return WrapReq(env, r);
}

// Receives: once MPI_Improbe matches a message, posts MPI_Imrecv for it. False if none yet.
bool MatchAndPost(Napi::Env env, Req* r) {
  int flag = 0;
  MPI_Message msg;
  MPI_Status st;
  Check(env, MPI_Improbe(r->peer, r->tag, MPI_COMM_WORLD, &flag, &msg, &st), "MPI_Irecv");
  if (!flag) return false;
  const int bytes = MessageBytes(env, st);
  void* dst = r->buf.data;
  int count = r->buf.count;
  MPI_Datatype dt = r->buf.dt;
  if (r->type == Req::kRecvBytes) {
    Napi::Uint8Array data = Napi::Uint8Array::New(env, static_cast<size_t>(bytes));
    r->keep = Napi::Persistent(static_cast<Napi::Value>(data));
    r->buf.data = dst = data.Data();
    r->buf.count = count = bytes;
    r->buf.dt = dt = MPI_UINT8_T;
  } else if (static_cast<size_t>(bytes) > ByteLength(r->buf)) {
    r->scratch.resize(static_cast<size_t>(bytes));
    r->truncated_bytes = bytes;
    dst = r->scratch.data();
    count = bytes;
    dt = MPI_BYTE;
  }
  Check(env, MPI_Imrecv(dst, count, dt, &msg, &r->req), "MPI_Irecv");
  r->matched = true;
  return true;
}

// mpiTest(handle): undefined while pending; on completion { source, tag, count } (plus
// `data` for mpiIrecvBytes), and the buffer is released. Throws ERR_MPI on failure.
Napi::Value Test(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ours = false;
  if (info.Length() > 0 && info[0].IsExternal())
    napi_check_object_type_tag(env, info[0], &kReqTag, &ours);
  if (!ours) throw CodedError(env, "ERR_INVALID_ARG_TYPE", "Expected a request handle for request", Kind::kType);
  Req* r = info[0].As<Napi::External<Req>>().Data();
  if (r->done) throw CodedError(env, "ERR_INVALID_STATE", "MPI_Test: this request has already completed");
  RequireLive(env, "MPI_Test");
  const char* op = r->type == Req::kSend ? "MPI_Isend" : "MPI_Irecv";
  MPI_Status st;
  int flag = 0;
  try {
    if (r->type != Req::kSend && !r->matched && !MatchAndPost(env, r)) return env.Undefined();
    Check(env, MPI_Test(&r->req, &flag, &st), op);
    if (flag && r->truncated_bytes >= 0)
      throw MpiError(env, op, MPI_ERR_TRUNCATE, TruncationDetail(r->truncated_bytes, ByteLength(r->buf)));
  } catch (...) {
    // A failed request is over: release what it pinned.
    r->done = true;
    r->keep.Reset();
    std::vector<char>().swap(r->scratch);
    throw;
  }
  if (!flag) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  if (r->type == Req::kSend) {
    // A send's status carries nothing meaningful: report what was sent.
    o.Set("source", r->peer);
    o.Set("tag", r->tag);
    o.Set("count", r->count);
  } else {
    o = StatusObject(env, st, r->buf.dt);
    if (r->type == Req::kRecvBytes) o.Set("data", r->keep.Value());
  }
  r->done = true;
  r->keep.Reset();
  return o;
}

#endif  // FLUIDIMAGE_HAVE_MPI

}  // namespace

void InitMpi(Napi::Env env, Napi::Object exports) {
#if FLUIDIMAGE_HAVE_MPI
  const bool available = true;
  using Fn = Napi::Value (*)(const Napi::CallbackInfo&);
  const std::pair<const char*, Fn> fns[] = {
      {"mpiLibraryVersion", LibraryVersion},
      {"mpiInit", Init},
      {"mpiFinalize", Finalize},
      {"mpiAbort", Abort},
      {"mpiDeadline", SetDeadline},
      {"mpiBarrier", Barrier},
      {"mpiBcast", Bcast},
      {"mpiGatherv", Gatherv},
      {"mpiAllreduce", [](const Napi::CallbackInfo& i) { return Reduction(i, true); }},
      {"mpiReduce", [](const Napi::CallbackInfo& i) { return Reduction(i, false); }},
      {"mpiSend", Send},
      {"mpiRecv", Recv},
      {"mpiRecvBytes", RecvBytes},
      {"mpiIsend", Isend},
      {"mpiIrecv", Irecv},
      {"mpiIrecvBytes", IrecvBytes},
      {"mpiTest", Test},
      {"mpiIprobe", Iprobe},
      {"mpiIsInitialized", [](const Napi::CallbackInfo& i) -> Napi::Value { return Napi::Boolean::New(i.Env(), Initialized()); }},
      {"mpiIsFinalized", [](const Napi::CallbackInfo& i) -> Napi::Value { return Napi::Boolean::New(i.Env(), Finalized()); }},
  };
  for (const char* name : kFunctions) exports.Set(name, env.Undefined());
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
#else
  const bool available = false;
  for (const char* name : kFunctions) exports.Set(name, Napi::Function::New(env, Unavailable, name));
  // Queries that have an answer without MPI: never initialised, finalising is a no-op.
  auto no = [](const Napi::CallbackInfo& i) -> Napi::Value { return Napi::Boolean::New(i.Env(), false); };
  for (const char* name : {"mpiIsInitialized", "mpiIsFinalized", "mpiFinalize"})
    exports.Set(name, Napi::Function::New(env, no, name));
#endif
  exports.Set("mpiAvailable", Napi::Function::New(env, [available](const Napi::CallbackInfo& i) -> Napi::Value {
    return Napi::Boolean::New(i.Env(), available);
  }, "mpiAvailable"));
}
