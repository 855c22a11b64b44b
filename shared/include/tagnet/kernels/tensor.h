// tagnet tensors: NHWC float32 arrays, owning or viewing.
//
//   tagnet::Tensor x({32, 56, 56, 1});          // owning, zero-filled, (N, H, W, C)
//   x.at(0) = 1.f;
//   tagnet::Tensor row = x.slice(4, 8);          // view of images 4..11, (8, 56, 56, 1)
//   x.expect_shape({32, 56, 56, 1}, "input");   // throws "input: expected (32, 56, 56, 1), got ..."
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

namespace tagnet {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int> dims) : d_(dims) {}
  explicit Shape(std::vector<int> dims) : d_(std::move(dims)) {}

  int rank() const { return static_cast<int>(d_.size()); }
  int operator[](int i) const { return d_[i]; }
  int& operator[](int i) { return d_[i]; }
  const std::vector<int>& dims() const { return d_; }
  size_t numel() const;
  std::string str() const;  // "(32, 28, 28, 1)"
  // The same shape with a leading batch dimension.
  Shape batched(int n) const;
  bool operator==(const Shape& o) const { return d_ == o.d_; }
  bool operator!=(const Shape& o) const { return d_ != o.d_; }

 private:
  std::vector<int> d_;
};

// 64-byte aligned so SIMD kernels get aligned rows.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
using FloatBuffer = std::vector<float, AlignedAllocator<float>>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(const Shape& shape);  // owning, zero-filled
  static Tensor view(float* data, const Shape& shape);

  Tensor(const Tensor& o);  // deep copy of an owning tensor; a view copies the pointer
  Tensor& operator=(const Tensor& o);
  Tensor(Tensor&& o) noexcept;
  Tensor& operator=(Tensor&& o) noexcept;

  const Shape& shape() const { return shape_; }
  int dim(int i) const { return shape_[i]; }
  int rank() const { return shape_.rank(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool is_view() const { return view_; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  float& at(size_t i) { return data_[i]; }
  float at(size_t i) const { return data_[i]; }

  // Owning tensors only: changes the shape, keeping the storage when it is large enough.
  // Contents are unspecified afterwards.
  void resize(const Shape& shape);
  void zero();
  void fill(float v);
  // A view of `count` entries of the leading dimension starting at `begin`.
  Tensor slice(int begin, int count) const;
  // A view with another shape of the same number of elements.
  Tensor reshaped(const Shape& shape) const;

  // Throws std::invalid_argument "<what>: expected <shape>, got <shape>".
  void expect_shape(const Shape& shape, const std::string& what) const;

 private:
  Shape shape_;
  size_t size_ = 0;
  float* data_ = nullptr;
  bool view_ = false;
  FloatBuffer storage_;
};

}  // namespace tagnet
