// Element types of tensors: float32 for models, float64 for CPU gradient checks, int32 for indices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace musicrec {

enum class DType : uint8_t { F32, F64, I32 };

inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : t == DType::F64 ? "float64" : "int32"; }
inline bool is_floating(DType t) { return t != DType::I32; }

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::I32; };

}  // namespace musicrec
