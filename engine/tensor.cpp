// Tensor storage, factories, copies between devices and printing (see tensor.h).
#include "engine/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/error.h"
#if MUSICREC_WITH_CUDA
#include "engine/cuda_context.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
CachingAllocator& allocator_for(Device d) {
#if MUSICREC_WITH_CUDA
  if (d.is_cuda()) return CudaContext::get().allocator();
#else
  MR_CHECK(!d.is_cuda(), "CUDA tensor requested but " + cuda_unavailable_reason());
#endif
  return cpu_allocator();
}
}  // namespace

Storage::Storage(size_t b, Device d) : bytes(b), device(d), allocator(&allocator_for(d)) { ptr = allocator->allocate(b); }
Storage::Storage(size_t b, Device d, CachingAllocator& a) : bytes(b), device(d), allocator(&a) { ptr = a.allocate(b); }
Storage::~Storage() { allocator->deallocate(ptr); }

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  MR_CHECK(shape.size() <= 4, "tensors have at most 4 dimensions, got shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = Device::cpu();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), Device::cpu(),
                                            pinned_allocator());
  return Tensor(impl);
}

Tensor Tensor::row(int64_t i) const {
  MR_CHECK(dim() >= 2, "row() needs at least 2 dimensions, shape is " + shape_str(shape()));
  MR_CHECK(i >= 0 && i < size(0), "row " + std::to_string(i) + " out of range for shape " + shape_str(shape()));
  Tensor v = detach();
  Shape s(shape().begin() + 1, shape().end());
  v.impl()->shape = s;
  v.impl()->offset = impl_->offset + static_cast<size_t>(i * shape_numel(s)) * dtype_size(dtype());
  return v;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  MR_CHECK(shape.size() <= 4, "tensors have at most 4 dimensions, got shape " + shape_str(shape));
  for (int64_t d : shape) MR_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(impl);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  const int64_t n = t.numel();
  if (device.is_cuda()) {
#if MUSICREC_WITH_CUDA
    cudaStream_t s = CudaContext::get().stream();
    if (dtype == DType::F32) kernels::cuda::fill(t.data<float>(), n, static_cast<float>(value), s);
    else if (dtype == DType::I32) kernels::cuda::fill_i32(t.data<int32_t>(), n, static_cast<int32_t>(value), s);
    else MR_CHECK(false, "float64 tensors live on the CPU only");
#endif
  } else if (dtype == DType::F32) {
    kernels::cpu::fill<float>(t.data<float>(), n, static_cast<float>(value));
  } else if (dtype == DType::F64) {
    kernels::cpu::fill<double>(t.data<double>(), n, value);
  } else {
    int32_t* p = t.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(value);
  }
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

namespace {
template <typename T> Tensor from_vec(const std::vector<T>& v, const Shape& shape, Device device) {
  MR_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape),
           std::to_string(v.size()) + " values do not fill shape " + shape_str(shape));
  Tensor host = Tensor::empty(shape, DTypeOf<T>::value, Device::cpu());
  if (!v.empty()) std::memcpy(host.raw_data(), v.data(), v.size() * sizeof(T));
  return host.to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s, Device d) { return from_vec(v, s, d); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s, Device d) { return from_vec(v, s, d); }
Tensor Tensor::from_vector(const std::vector<int32_t>& v, const Shape& s, Device d) { return from_vec(v, s, d); }

const Shape& Tensor::shape() const {
  MR_CHECK(defined(), "use of an undefined tensor");
  return impl_->shape;
}
int64_t Tensor::size(int64_t d) const {
  int64_t nd = dim();
  if (d < 0) d += nd;
  MR_CHECK(d >= 0 && d < nd, "dimension " + std::to_string(d) + " out of range for shape " + shape_str(shape()));
  return impl_->shape[static_cast<size_t>(d)];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const {
  MR_CHECK(defined(), "use of an undefined tensor");
  return impl_->dtype;
}
Device Tensor::device() const {
  MR_CHECK(defined(), "use of an undefined tensor");
  return impl_->device;
}
void* Tensor::raw_data() const {
  MR_CHECK(defined(), "use of an undefined tensor");
  return static_cast<char*>(impl_->storage->ptr) + impl_->offset;
}

template <typename T> T* Tensor::data() const {
  MR_CHECK(defined(), "use of an undefined tensor");
  MR_CHECK(impl_->dtype == DTypeOf<T>::value, std::string("tensor is ") + dtype_name(impl_->dtype) + ", accessed as " +
                                                  dtype_name(DTypeOf<T>::value));
  return reinterpret_cast<T*>(static_cast<char*>(impl_->storage->ptr) + impl_->offset);
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;

void Tensor::copy_from(const Tensor& src) {
  MR_CHECK(src.shape() == shape() && src.dtype() == dtype(),
           "copy_from: shapes/dtypes differ: " + shape_str(src.shape()) + " " + dtype_name(src.dtype()) + " into " +
               shape_str(shape()) + " " + dtype_name(dtype()));
  const size_t bytes = nbytes();
  if (bytes == 0) return;
  if (!src.is_cuda() && !is_cuda()) {
    std::memcpy(raw_data(), src.raw_data(), bytes);
    return;
  }
#if MUSICREC_WITH_CUDA
  auto& ctx = CudaContext::get();
  cudaMemcpyKind kind = src.is_cuda() ? (is_cuda() ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                      : cudaMemcpyHostToDevice;
  MR_CUDA_CHECK(cudaMemcpyAsync(raw_data(), src.raw_data(), bytes, kind, ctx.stream()));
  // A host destination must be complete when this returns; a host source may be freed right after.
  if (kind != cudaMemcpyDeviceToDevice) ctx.synchronize();
#else
  MR_CHECK(false, "CUDA tensor in a build without CUDA");
#endif
}

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor out = empty(shape(), dtype(), device);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  return Tensor(impl);
}

Tensor Tensor::to_dtype(DType target) const {
  MR_CHECK(!is_cuda(), "to_dtype works on CPU tensors; move to the CPU first");
  Tensor out = empty(shape(), target, Device::cpu());
  const int64_t n = numel();
  auto read = [&](int64_t i) -> double {
    switch (dtype()) {
      case DType::F32: return data<float>()[i];
      case DType::F64: return data<double>()[i];
      default: return data<int32_t>()[i];
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    double v = read(i);
    switch (target) {
      case DType::F32: out.data<float>()[i] = static_cast<float>(v); break;
      case DType::F64: out.data<double>()[i] = v; break;
      default: out.data<int32_t>()[i] = static_cast<int32_t>(v); break;
    }
  }
  return out;
}

template <typename T> std::vector<T> Tensor::to_vector() const {
  Tensor h = cpu();
  const T* p = h.data<T>();
  return std::vector<T>(p, p + h.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;

double Tensor::item() const {
  MR_CHECK(numel() == 1, "item() needs exactly one element, shape is " + shape_str(shape()));
  Tensor h = cpu();
  switch (dtype()) {
    case DType::F32: return h.data<float>()[0];
    case DType::F64: return h.data<double>()[0];
    default: return h.data<int32_t>()[0];
  }
}

bool Tensor::requires_grad() const { return defined() && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool on) {
  MR_CHECK(!on || is_floating(dtype()), "only floating-point tensors can require gradients");
  impl_->requires_grad = on;
  return *this;
}
Tensor Tensor::grad() const { return impl_ && impl_->grad ? Tensor(impl_->grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) {
  MR_CHECK(!g.defined() || (g.shape() == shape() && g.dtype() == dtype() && g.device() == device()),
           "set_grad: gradient must match the tensor's shape, dtype and device");
  impl_->grad = g.impl_ptr();
}
void Tensor::zero_grad() {
  impl_->grad.reset();
  impl_->sparse_grad.reset();
}
void Tensor::backward(const Tensor& grad_output) const { autograd::backward(*this, grad_output); }

namespace {
void print_rec(std::ostringstream& os, const Tensor& h, size_t d, int64_t offset, int64_t max_per_dim) {
  const Shape& s = h.shape();
  if (d == s.size()) {
    switch (h.dtype()) {
      case DType::F32: os << h.data<float>()[offset]; break;
      case DType::F64: os << h.data<double>()[offset]; break;
      default: os << h.data<int32_t>()[offset]; break;
    }
    return;
  }
  int64_t stride = 1;
  for (size_t k = d + 1; k < s.size(); ++k) stride *= s[k];
  os << "[";
  const int64_t n = s[d];
  const int64_t half = max_per_dim / 2;
  for (int64_t i = 0; i < n; ++i) {
    if (n > max_per_dim && i == half) {
      os << "...";
      i = n - half - 1;
      if (i + 1 < n) os << ", ";
      continue;
    }
    print_rec(os, h, d + 1, offset + i * stride, max_per_dim);
    if (i + 1 < n) os << (d + 1 < s.size() ? ",\n" + std::string(d + 8, ' ') : ", ");
  }
  os << "]";
}
}  // namespace

std::string Tensor::str(int64_t max_per_dim) const {
  if (!defined()) return "tensor(undefined)";
  Tensor h = cpu();
  std::ostringstream os;
  os.precision(6);
  os << "tensor(";
  print_rec(os, h, 0, 0, max_per_dim);
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace musicrec
