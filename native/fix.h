// Validation of a pass's vectors that is heavy enough to want native code: the
// normalised median test (Westerweel & Scarano 2005).
#pragma once

namespace fi {

// Normalised median residual of every vector of a ny x nx grid: the residual of the vector
// from the median of its valid 8-neighbours, divided by the median residual of the
// neighbours plus eps, the larger of the two components. Border vectors see ghost cells
// extrapolated linearly from the two inner neighbours (2 u1 - u2). NaN where the vector
// is NaN or has fewer than 3 valid neighbours.
void MedianResiduals(const float* dx, const float* dy, int ny, int nx, double eps, double* out);

}  // namespace fi
