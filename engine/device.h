// Where a tensor lives and how `auto` picks: CUDA when the build has it, a device is present and
// MUSICREC_DEVICE does not say cpu; otherwise the CPU.
#pragma once
#include <cstdint>
#include <string>

namespace musicrec {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool operator==(const Device& o) const { return type == o.type && (type == DeviceType::CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// True when this build contains the CUDA backend.
bool cuda_compiled();
// Number of CUDA devices visible; 0 without the backend, without a driver or without a device.
int cuda_device_count();
// The reason cuda_device_count() is 0, for messages ("no CUDA driver", "built without CUDA", ...).
std::string cuda_unavailable_reason();
// "auto" (CUDA if usable, else CPU, and MUSICREC_DEVICE=cpu forces the CPU), "cpu", "cuda", "cuda:N".
// Asking for CUDA where there is none is an error naming the reason.
Device parse_device(const std::string& spec);
Device auto_device();

}  // namespace musicrec
