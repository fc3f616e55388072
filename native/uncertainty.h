// Per-vector uncertainty from correlation statistics (Wieneke 2015, Meas. Sci. Technol. 26
// 074002): in two windows that match (images deformed by the measured displacement), the
// spread of the per-pixel contributions to the correlation at lags +1 and -1 gives the
// standard deviation of the peak's asymmetry, which the 3-point Gaussian fit turns into a
// standard deviation of the displacement. No Node-API here.
#pragma once
#include <cstdint>

namespace fi {

struct UncertaintyInput {
  const float* im0 = nullptr;  // ny*nx, row-major; NaN = masked
  const float* im1 = nullptr;
  int ny = 0, nx = 0;
  int h = 0, w = 0;                   // window shape (the same in both images)
  const int32_t* starts0 = nullptr;   // n * (row, col) of each window in im0
  const int32_t* starts1 = nullptr;   // n * (row, col) of the matching window in im1
  // Displacement left between the two windows (pixels, e.g. the residual of the pass); the
  // statistics are taken around its nearest whole-pixel lag. NaN: no vector, NaN out.
  const float* rx = nullptr;
  const float* ry = nullptr;
  int n = 0;
  // Half-size L of the neighbourhood over which products of deviations of contributions
  // are summed too (0: contributions taken as independent, Wieneke's sum of squares).
  int neighbourhood = 0;
  // Windows with a smaller fraction of usable pixels give NaN.
  double min_valid_fraction = 0.5;
};

struct UncertaintyOutput {
  float* sigma_x = nullptr;  // one standard deviation of dx (pixels), NaN where unknown
  float* sigma_y = nullptr;
  // Optional (nullptr: not written): where the 3-point Gaussian fit of these correlation
  // values puts the peak, minus the displacement given (rx, ry): what the windows still
  // disagree on, NaN where the fit is impossible.
  float* offset_x = nullptr;
  float* offset_y = nullptr;
};

// The 3-point Gaussian sub-pixel estimator: peak position from the correlation at lags
// -1, 0, +1 (NaN when the values do not make a peak of positive values).
double GaussianPeak3(double c_minus, double c0, double c_plus);

// Windows [begin, end). Thread-safe.
void UncertaintyRange(const UncertaintyInput& in, const UncertaintyOutput& out, int begin, int end);

}  // namespace fi
