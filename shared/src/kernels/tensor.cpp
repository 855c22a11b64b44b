#include "tagnet/kernels/tensor.h"

#include <algorithm>
#include <stdexcept>

namespace tagnet {

size_t Shape::numel() const {
  size_t n = 1;
  for (int v : d_) n *= static_cast<size_t>(v);
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (size_t i = 0; i < d_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(d_[i]);
  }
  if (d_.size() == 1) s += ",";
  return s + ")";
}

Shape Shape::batched(int n) const {
  std::vector<int> d{n};
  d.insert(d.end(), d_.begin(), d_.end());
  return Shape(std::move(d));
}

Tensor::Tensor(const Shape& shape) { resize(shape); zero(); }

Tensor Tensor::view(float* data, const Shape& shape) {
  Tensor t;
  t.shape_ = shape;
  t.size_ = shape.numel();
  t.data_ = data;
  t.view_ = true;
  return t;
}

Tensor::Tensor(const Tensor& o) { *this = o; }

Tensor& Tensor::operator=(const Tensor& o) {
  if (this == &o) return *this;
  if (o.view_) {
    storage_.clear();
    shape_ = o.shape_;
    size_ = o.size_;
    data_ = o.data_;
    view_ = true;
  } else {
    view_ = false;
    storage_ = o.storage_;
    shape_ = o.shape_;
    size_ = o.size_;
    data_ = storage_.data();
  }
  return *this;
}

Tensor::Tensor(Tensor&& o) noexcept { *this = std::move(o); }

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this == &o) return *this;
  shape_ = std::move(o.shape_);
  size_ = o.size_;
  view_ = o.view_;
  storage_ = std::move(o.storage_);
  data_ = view_ ? o.data_ : storage_.data();
  o.size_ = 0;
  o.data_ = nullptr;
  o.shape_ = Shape();
  return *this;
}

void Tensor::resize(const Shape& shape) {
  if (view_) {
    if (shape.numel() != size_)
      throw std::logic_error("cannot resize a tensor view from " + shape_.str() + " to " +
                             shape.str());
    shape_ = shape;
    return;
  }
  shape_ = shape;
  size_ = shape.numel();
  // XNNPACK may read up to 16 bytes past the end of an operand (XNN_EXTRA_BYTES).
  constexpr size_t kSlack = 16 / sizeof(float);
  if (storage_.size() < size_ + kSlack) storage_.resize(size_ + kSlack);
  data_ = storage_.data();
}

void Tensor::zero() { fill(0.f); }

void Tensor::fill(float v) { std::fill(data_, data_ + size_, v); }

Tensor Tensor::slice(int begin, int count) const {
  if (rank() == 0 || begin < 0 || count < 0 || begin + count > shape_[0])
    throw std::out_of_range("slice [" + std::to_string(begin) + ", " +
                            std::to_string(begin + count) + ") of a tensor of shape " +
                            shape_.str());
  Shape s = shape_;
  s[0] = count;
  const size_t row = shape_[0] ? size_ / shape_[0] : 0;
  return view(data_ + row * begin, s);
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (shape.numel() != size_)
    throw std::invalid_argument("cannot reshape " + shape_.str() + " to " + shape.str());
  return view(data_, shape);
}

void Tensor::expect_shape(const Shape& shape, const std::string& what) const {
  if (shape_ != shape)
    throw std::invalid_argument(what + ": expected shape " + shape.str() + ", got " +
                                shape_.str());
}

}  // namespace tagnet
