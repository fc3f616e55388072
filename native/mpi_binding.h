// MPI binding of the native core: registers the `mpi*` functions declared in the "MPI"
// section of src/native.ts. Built with or without an MPI library (FLUIDIMAGE_HAVE_MPI);
// without one, every function except mpiAvailable() throws ERR_MPI_UNAVAILABLE.

#pragma once

#include <napi.h>

void InitMpi(Napi::Env env, Napi::Object exports);
