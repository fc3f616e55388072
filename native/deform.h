// Image deformation for iterative multigrid PIV: both images are resampled along a
// displacement field (image 0 at x - d/2, image 1 at x + d/2) with B-spline
// interpolation (cubic, quintic or septic), so that the correlation of the deformed windows
// measures a residual.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fi {

// Spline degrees the deformation supports.
inline bool ValidSplineDegree(int degree) { return degree == 3 || degree == 5 || degree == 7; }

struct DeformInput {
  int ny = 0, nx = 0;
  int degree = 5;  // of the B-spline whose coefficients are given
  // Displacement known on a rectilinear grid (gy rows at ys, gx columns at xs).
  const float* xs = nullptr;
  const float* ys = nullptr;
  int gx = 0, gy = 0;
  const float* dx = nullptr;  // gy*gx
  const float* dy = nullptr;
  // Sampling position = pixel + factor * d (factor -0.5 for image 0, +0.5 for image 1).
  float factor = 0.f;
  // Optional: 0 where the source pixel is masked (NaN); outputs sampled there are NaN.
  const uint8_t* valid = nullptr;
};

// Replaces NaN samples (masked pixels) by the mean of the others, so that the spline
// prefilter does not spread them, and records where they were. False if there were none.
bool FillInvalid(float* data, size_t n, std::vector<uint8_t>* valid);

// In-place conversion of samples to B-spline coefficients of `degree` (mirror boundaries).
void BSplinePrefilter(float* data, int ny, int nx, int degree);

// The B-spline coefficients of an image into `coef` (which may be `image` itself): NaN
// pixels filled first (FillInvalid) and recorded in `valid`. True if there were any.
bool SplineCoefficients(const float* image, int ny, int nx, int degree, float* coef, std::vector<uint8_t>* valid);

// Resamples rows [row_begin, row_end) of the image whose B-spline coefficients are `coef`.
void DeformRows(const DeformInput& in, const float* coef, float* out, int row_begin, int row_end);

// Name of the resampling kernel in use: "avx2" (x86-64 with AVX2 and FMA) or "generic".
// FLUIDIMAGE_SIMD=generic in the environment forces the generic one (tests compare them).
const char* DeformKernelName();

}  // namespace fi
