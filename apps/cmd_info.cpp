// `musicrec info`: what this build is and what it sees, as text or JSON.
#include <cblas.h>
#include <fmt/core.h>
#include <hdf5.h>

#include <nlohmann/json.hpp>

#include "apps/build_info.h"
#include "apps/commands.h"
#include "engine/device.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#if MUSICREC_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "engine/cuda_context.h"
#endif

namespace musicrec::apps {
namespace {

nlohmann::json collect_info() {
  nlohmann::json j = build_info();
  nlohmann::json devices = nlohmann::json::array();
  // The float matrix products' kernel (MUSICREC_CPU_SGEMM): the hand-written AVX-512 one or the library.
  const bool own = kernels::cpu::sgemm_kernel_in_use() == kernels::cpu::SgemmKernel::Own;
  devices.push_back({{"name", "cpu"},
                     {"kind", "cpu"},
                     {"kernel_threads", kernels::cpu::cpu_threads()},
                     {"float_products", own ? "own AVX-512 kernel" : "BLAS library"}});
#if MUSICREC_WITH_CUDA
  for (int i = 0; i < cuda_device_count(); ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    devices.push_back({{"name", fmt::format("cuda:{}", i)},
                       {"kind", p.name},
                       {"compute_capability", fmt::format("{}.{}", p.major, p.minor)},
                       {"memory_gib", double(p.totalGlobalMem) / double(1ull << 30)},
                       {"multiprocessors", p.multiProcessorCount}});
  }
#endif
  j["devices"] = devices;
  if (cuda_device_count() == 0) j["cuda_unavailable"] = cuda_unavailable_reason();
#if MUSICREC_WITH_CUDA
  // The settings the environment gave the GPU (README, environment variables): what a timing depends on.
  if (cuda_device_count() > 0) {
    const CudaSettings& s = CudaContext::get().settings();
    j["cuda_settings"] = {{"tf32", s.allow_tf32},
                          {"deterministic", s.deterministic},
                          {"cudnn_algorithms", s.measure_conv_algorithms ? "by timing" : "by heuristics"},
                          {"conv_kernels", !s.direct_conv ? "cudnn" : s.direct_conv_2x2_forward ? "direct-all" : "direct"},
                          {"cudnn_workspace_mib", s.workspace_limit >> 20}};
  }
#endif
  const char* env = std::getenv("MUSICREC_DEVICE");
  j["auto_device"] = auto_device().str();
  j["MUSICREC_DEVICE"] = env ? env : "";
  return j;
}

void print_text(const nlohmann::json& j) {
  fmt::print("musicrec {}\n", j["version"].get<std::string>());
  fmt::print("build:     {} build, {}, CUDA backend {}{}\n", j["build"]["type"].get<std::string>(),
             j["build"]["compiler"].get<std::string>(), j["build"]["cuda_backend"].get<bool>() ? "ON" : "OFF",
             j["build"]["cuda_backend"].get<bool>()
                 ? " (architectures " + j["build"]["cuda_architectures"].get<std::string>() + ")"
                 : "");
  fmt::print("libraries:\n");
  for (auto& [k, v] : j["libraries"].items()) fmt::print("  {:<13} {}\n", k, v.get<std::string>());
  fmt::print("devices:\n");
  for (auto& d : j["devices"]) {
    if (d["kind"] == "cpu") {
      const int threads = d["kernel_threads"].get<int>();
      fmt::print("  cpu  (kernels on {} thread{}; MUSICREC_CPU_THREADS sets it; float products: {}, "
                 "MUSICREC_CPU_SGEMM=best|library|own)\n",
                 threads, threads == 1 ? "" : "s", d["float_products"].get<std::string>());
      continue;
    }
    fmt::print("  {}  {} (sm_{}, {:.1f} GiB, {} SMs)\n", d["name"].get<std::string>(), d["kind"].get<std::string>(),
               d["compute_capability"].get<std::string>(), d["memory_gib"].get<double>(),
               d["multiprocessors"].get<int>());
  }
  if (j.contains("cuda_unavailable")) fmt::print("  (CUDA: {})\n", j["cuda_unavailable"].get<std::string>());
  if (j.contains("cuda_settings")) {
    const auto& s = j["cuda_settings"];
    fmt::print("cuda:      TF32 {}, {} backward convolutions, cuDNN algorithms {}, convolution kernels {}, "
               "cuDNN workspace up to {} MiB\n",
               s["tf32"].get<bool>() ? "on" : "off", s["deterministic"].get<bool>() ? "deterministic" : "any",
               s["cudnn_algorithms"].get<std::string>(), s["conv_kernels"].get<std::string>(),
               s["cudnn_workspace_mib"].get<size_t>());
  }
  fmt::print("auto picks: {}{}\n", j["auto_device"].get<std::string>(),
             j["MUSICREC_DEVICE"].get<std::string>().empty()
                 ? ""
                 : " (MUSICREC_DEVICE=" + j["MUSICREC_DEVICE"].get<std::string>() + ")");
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Build options, library versions, devices and the backend `auto` picks");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([json] {
    nlohmann::json j = collect_info();
    if (*json) fmt::print("{}\n", j.dump(2));
    else print_text(j);
  });
}

}  // namespace musicrec::apps
