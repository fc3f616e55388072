// Cross-correlation of all interrogation windows of one PIV pass (no Node-API here,
// so the core can be driven from the addon, a benchmark or a C++ test alike).
#pragma once
#include <cstdint>

namespace fi {

enum SubpixMethod : int { kNoSubpix = 0, kCentroid = 1, kGaussian2 = 2, kGaussian = 3 };

// Per-vector status written by CorrelatePass. Values are part of the JS contract
// (src/native.ts mirrors them).
enum VecCode : uint8_t {
  kOk = 0,
  kPeakOnBorder = 1,    // max on the edge of the search region: displacement unreliable (NaN)
  kSubpixFallback = 2,  // Gaussian fit impossible, centroid used (value kept)
  kNoTexture = 3,       // a window has zero variance (NaN)
  kOutside = 4,         // too little of a window inside the image or the mask (NaN)
};

struct PassInput {
  const float* im0 = nullptr;  // first image, ny*nx, row-major
  const float* im1 = nullptr;  // second image
  int ny = 0, nx = 0;
  int h0 = 0, w0 = 0;  // window shape in im0
  int h1 = 0, w1 = 0;  // window shape in im1
  const int32_t* starts0 = nullptr;  // n * (row, col) of the top-left corner in im0
  const int32_t* starts1 = nullptr;  // n * (row, col) in im1 (may be outside the image)
  int n = 0;
  float displacement_max = 0.f;  // radius of the peak search around zero lag; <= 0: whole map
  int subpix = kGaussian2;
  int nsubpix = 1;  // half-size of the centroid neighbourhood
  // Windows with a smaller fraction of valid pixels (inside the image, not NaN) give kOutside.
  double min_valid_fraction = 0.5;
  // Peaks searched per window (the first plus secondary ones), and the half-size of the
  // square around a found peak where the next one may not be.
  int nb_peaks = 1;
  int exclude_radius = 3;
  // Gaussian weighting of the windows: standard deviation as a fraction of the window's
  // size along each axis; <= 0: uniform weights.
  double window_sigma = 0;
};

constexpr int kMaxPeaks = 8;

struct PassOutput {
  float* dx = nullptr;      // displacement along columns (centre of window 1 - centre of window 0 + lag)
  float* dy = nullptr;      // displacement along rows
  float* correl = nullptr;  // normalised peak value (identical windows give 1)
  uint8_t* code = nullptr;  // VecCode
  // Secondary peaks: n * (nb_peaks - 1) values, NaN where none was found; a peak whose
  // sub-pixel fit is impossible (on the border of the searched region) keeps its height in
  // correl2 (for the peak ratio) with NaN displacements.
  float* dx2 = nullptr;
  float* dy2 = nullptr;
  float* correl2 = nullptr;
  // Optional (nullptr: not computed): the first peak over the mean of |correlation| over the
  // searched region (the peak-to-mean signal-to-noise ratio), NaN where no peak.
  float* peak_to_mean = nullptr;
  // Optional (nullptr: not done), ensemble correlation: each window's normalised correlation
  // plane (H*W values, H and W the larger window sides, zero lag at index 0, lags wrapped)
  // is added to planes[k*H*W ...] and planes_count[k] incremented. Windows that cannot be
  // correlated add nothing.
  float* planes = nullptr;
  float* planes_count = nullptr;
};

// Seconds spent in each phase of a pass (for the benchmark's stage shares): loading the
// windows (with masks and weights), FFTs, cross-spectra and (de)interleaving, peaks and
// sub-pixel fits.
struct PassPhases {
  double load = 0, fft = 0, spectra = 0, peaks = 0;
};

// Correlates windows [begin, end). Thread-safe; uses the shared FFTW plan cache. With
// `phases`, adds the time of each phase to it (a few clock reads per window).
void CorrelateRange(const PassInput& in, const PassOutput& out, int begin, int end, PassPhases* phases = nullptr);

// Peaks and sub-pixel fits of windows [begin, end) on summed correlation planes (the
// `planes` and `planes_count` of CorrelateRange over many pairs), written to `out` as
// CorrelateRange would (correl: the mean normalised peak). `in` gives the windows'
// geometry and the search; its images are not read. A window no pair could correlate is
// kNoTexture.
void PeaksOnPlanes(const PassInput& in, const float* planes, const float* planes_count, const PassOutput& out, int begin,
                   int end);

// FFT work only (one complex forward transform per window, one inverse per two), the
// lower bound of a pass: returns seconds.
double TimeFftOnly(int ny, int nx, int count);

}  // namespace fi
