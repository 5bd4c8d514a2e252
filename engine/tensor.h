// Tensor: a contiguous array of float32, float64 or int32 with up to 4 dimensions, on the CPU or a
// CUDA device, with the autograd fields (requires_grad, grad, the node that produced it).
// A Tensor is a shared handle: copies alias the same data (as in PyTorch); clone() copies the data.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"

namespace musicrec {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Node;
class Tensor;

// One block of memory from the device's caching allocator, returned to it when the last tensor
// using it goes away.
class CachingAllocator;

struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device;
  CachingAllocator* allocator;  // the one it returns to
  Storage(size_t bytes, Device device);
  Storage(size_t bytes, Device device, CachingAllocator& allocator);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct SparseRows;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes into storage (row views of data tensors)
  Shape shape;
  DType dtype = DType::F32;
  Device device;
  bool requires_grad = false;
  // Accumulated gradient of a leaf (dense). Embedding tables with sparse_grad set accumulate into
  // sparse_grad instead: the rows a batch touched and their gradients.
  std::shared_ptr<TensorImpl> grad;
  bool sparse_grad_enabled = false;
  std::shared_ptr<SparseRows> sparse_grad;
  std::shared_ptr<Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<int32_t>& v, const Shape& shape, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
  // A CPU tensor in page-locked memory where a CUDA device exists (faster, asynchronous-capable
  // copies to the GPU); ordinary CPU memory elsewhere.
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32);

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_as(const Tensor& o) const { return impl_ == o.impl_; }

  // Typed pointer; the type must match dtype() (checked).
  template <typename T> T* data() const;
  void* raw_data() const;

  // ---- copies ----
  Tensor to(Device device) const;  // same tensor if already there; never tracked by autograd
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor to_dtype(DType dtype) const;  // CPU only; copies
  Tensor clone() const;                // same device, new storage, not tracked
  Tensor detach() const;               // shares storage, drops autograd history
  // Row i of a tensor with at least 2 dimensions, as a view sharing storage (not tracked by autograd:
  // meant for slicing batches of data, e.g. one feature column out of [features, batch]).
  Tensor row(int64_t i) const;
  void copy_from(const Tensor& src);   // same shape and dtype, any devices
  template <typename T> std::vector<T> to_vector() const;
  double item() const;  // single element, any dtype, as double

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);
  Tensor grad() const;  // dense gradient (undefined if none yet)
  void set_grad(const Tensor& g);
  void zero_grad();     // drops dense and sparse gradients
  void backward(const Tensor& grad_output = Tensor()) const;

  std::string str(int64_t max_per_dim = 6) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A row-sparse gradient: rows[u] is a table row (or -1 for padding) and values[u, :] its gradient.
struct SparseRows {
  Tensor rows;    // int32 [U]
  Tensor values;  // float [U, dim]
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace musicrec
