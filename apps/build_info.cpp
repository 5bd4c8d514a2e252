// What this binary is: version, git commit, build options and library versions (see build_info.h).
#include "apps/build_info.h"

#include <cblas.h>
#include <fmt/core.h>
#include <hdf5.h>

#include "engine/device.h"
#include "musicrec_git_commit.h"
#if MUSICREC_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#endif

namespace musicrec::apps {
namespace {

[[maybe_unused]] std::string cuda_version_str(int v) { return v <= 0 ? "none" : fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

}  // namespace

nlohmann::json build_info() {
  nlohmann::json j;
  j["version"] = MUSICREC_VERSION;
  j["git_commit"] = MUSICREC_GIT_COMMIT;
  j["build"] = {{"type", MUSICREC_BUILD_TYPE},
                {"compiler", MUSICREC_COMPILER},
                {"cuda_backend", cuda_compiled()},
                {"cuda_architectures", MUSICREC_CUDA_ARCHS}};
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  j["libraries"]["hdf5"] = fmt::format("{}.{}.{}", maj, min, rel);
#if MUSICREC_BLAS_OPENBLAS
  j["libraries"]["blas"] = std::string("OpenBLAS: ") + openblas_get_config();
#else
  j["libraries"]["blas"] = "netlib reference BLAS (static)";
#endif
  j["libraries"]["fmt"] = fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100);
#if MUSICREC_WITH_CUDA
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
  j["libraries"]["cuda_runtime"] = cuda_version_str(runtime);
  j["libraries"]["cuda_driver"] = driver ? cuda_version_str(driver) : "none (no driver loaded)";
  size_t cudnn = cudnnGetVersion();
  j["libraries"]["cudnn"] = fmt::format("{}.{}.{}", cudnn / 10000, cudnn / 100 % 100, cudnn % 100);
  int cb_maj = 0, cb_min = 0, cb_patch = 0;
  cublasGetProperty(MAJOR_VERSION, &cb_maj);
  cublasGetProperty(MINOR_VERSION, &cb_min);
  cublasGetProperty(PATCH_LEVEL, &cb_patch);
  j["libraries"]["cublas"] = fmt::format("{}.{}.{}", cb_maj, cb_min, cb_patch);
#endif
  return j;
}

namespace {
std::string& stored_command_line() {
  static std::string line;
  return line;
}
}  // namespace

void set_command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i == 0) a = "musicrec";
    // Quote what a shell would split or expand.
    if (a.find_first_of(" \t'\"$`\\*?") != std::string::npos) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    line += (i ? " " : "") + a;
  }
  stored_command_line() = line;
}

const std::string& command_line() { return stored_command_line(); }

std::string command_line_or(const std::string& fallback) {
  return stored_command_line().empty() ? fallback : stored_command_line();
}

}  // namespace musicrec::apps
