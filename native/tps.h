// Thin-plate-spline smoothing with subdomains (the algorithm of Fluidimage/UVmat): the
// vectors are split into overlapping boxes; in each, a smoothing TPS is solved (dense
// linear system), vectors far from the smoothed field are replaced by it and the system
// solved again; evaluations average the boxes that contain the point.
#pragma once
#include <cstdint>
#include <vector>

namespace fi {

struct TpsInput {
  const double* x = nullptr;  // n centres (columns)
  const double* y = nullptr;  // n centres (rows)
  const double* u = nullptr;  // n values (dx)
  const double* v = nullptr;  // n values (dy)
  int n = 0;
  int subdom_size = 200;
  double smoothing_coef = 5.0;
  double threshold = 1.5;  // replace values differing from the smoothed field by more (pixels)
  int max_iterations = 10;
  // Also evaluate the smoothed field at the input points (u_smooth, v_smooth).
  bool smooth_at_points = true;
};

struct TpsOutput {
  std::vector<double> u_smooth, v_smooth;  // at the centres
  int replaced = 0;                        // values replaced by the iterative cleaning
  int singular_boxes = 0;                  // boxes whose system could not be solved
};

// Smooths and evaluates at m new points (xn, yn) -> un, vn (NaN where no box covers a point).
void TpsSmooth(const TpsInput& in, const double* xn, const double* yn, int m, double* un, double* vn,
               TpsOutput* out, int threads);

}  // namespace fi
