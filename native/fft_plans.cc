#include "fft_plans.h"

#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace fi {
namespace {

std::mutex g_mutex;
std::map<std::pair<int, int>, std::unique_ptr<Plan2D>> g_plans;
// FFTW_ESTIMATE unless told otherwise (compute.fftw_planner): the same plans in every run and
// process, hence bit-identical results; measured plans differ from run to run.
unsigned g_flags = FFTW_ESTIMATE;

}  // namespace

const Plan2D& GetPlan(int ny, int nx) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto key = std::make_pair(ny, nx);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return *it->second;
  auto plan = std::make_unique<Plan2D>();
  plan->ny = ny;
  plan->nx = nx;
  const size_t n = static_cast<size_t>(ny) * nx;
  // Planning with MEASURE overwrites the arrays: plan on scratch buffers. Later
  // executions use the new-array interface on buffers with the same alignment.
  AlignedCBuf in(n), out(n);
  plan->fwd = fftwf_plan_dft_2d(ny, nx, in.p, out.p, FFTW_FORWARD, g_flags);
  plan->bwd = fftwf_plan_dft_2d(ny, nx, in.p, out.p, FFTW_BACKWARD, g_flags);
  const Plan2D& ref = *plan;
  g_plans.emplace(key, std::move(plan));
  return ref;
}

bool SetPlannerEffort(const std::string& effort) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (effort == "estimate") g_flags = FFTW_ESTIMATE;
  else if (effort == "measure") g_flags = FFTW_MEASURE;
  else if (effort == "patient") g_flags = FFTW_PATIENT;
  else return false;
  return true;
}

std::string GetPlannerEffort() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_flags == FFTW_ESTIMATE) return "estimate";
  if (g_flags == FFTW_PATIENT) return "patient";
  return "measure";
}

int NumCachedPlans() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return static_cast<int>(g_plans.size());
}

bool ImportWisdom(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return fftwf_import_wisdom_from_filename(path.c_str()) != 0;
}

bool ExportWisdom(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return fftwf_export_wisdom_to_filename(path.c_str()) != 0;
}

}  // namespace fi
