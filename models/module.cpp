#include "models/module.h"

#include <sstream>

namespace st::models {

Linear::Linear(std::string name, int in_features, int out_features, bool bias, bool allocate)
    : Module(std::move(name)), in_(in_features), out_(out_features) {
  const Shape s{out_, in_};
  weight_ = allocate ? std::make_unique<Parameter>(name_ + ".weight", Tensor::zeros(s), true)
                     : std::make_unique<Parameter>(name_ + ".weight", s, true);
  if (bias) bias_ = std::make_unique<Parameter>(name_ + ".bias", Tensor::zeros({out_}), false);
}

Variable Linear::forward(const Variable& x) {
  if (weight_->sparse()) return sparse_linear(x, weight_->csr, bias_ ? bias_->var : Variable());
  return linear(x, weight_->var, bias_ ? bias_->var : Variable());
}

Shape Linear::output_shape(const Shape& in) const {
  ST_CHECK(in.size() == 1 && in[0] == in_, "layer ", name_, " expects ", in_,
           " input features, gets per-sample shape ", shape_str(in),
           in.size() != 1 ? " (add a flatten layer before it)" : "");
  return {out_};
}

std::vector<Parameter*> Linear::parameters() {
  std::vector<Parameter*> p{weight_.get()};
  if (bias_) p.push_back(bias_.get());
  return p;
}

std::string Linear::describe() const {
  std::ostringstream os;
  os << name_ << ": linear " << in_ << " -> " << out_ << (bias_ ? "" : " (no bias)");
  return os.str();
}

Conv2d::Conv2d(std::string name, int in_channels, int out_channels, int kh, int kw,
               Conv2dOptions opt, bool bias, bool allocate)
    : Module(std::move(name)), in_c_(in_channels), out_c_(out_channels), kh_(kh), kw_(kw), opt_(opt) {
  const Shape s{out_c_, in_c_, kh_, kw_};
  weight_ = allocate ? std::make_unique<Parameter>(name_ + ".weight", Tensor::zeros(s), true)
                     : std::make_unique<Parameter>(name_ + ".weight", s, true);
  if (bias) bias_ = std::make_unique<Parameter>(name_ + ".bias", Tensor::zeros({out_c_}), false);
}

Variable Conv2d::forward(const Variable& x) {
  if (weight_->sparse())
    return sparse_conv2d(x, weight_->csr, bias_ ? bias_->var : Variable(), opt_);
  return conv2d(x, weight_->var, bias_ ? bias_->var : Variable(), opt_);
}

Shape Conv2d::output_shape(const Shape& in) const {
  ST_CHECK(in.size() == 3 && in[0] == in_c_, "layer ", name_, " expects (", in_c_,
           ", H, W) inputs, gets per-sample shape ", shape_str(in));
  const int64_t oh = (in[1] + 2 * opt_.pad_h - kh_) / opt_.stride_h + 1;
  const int64_t ow = (in[2] + 2 * opt_.pad_w - kw_) / opt_.stride_w + 1;
  ST_CHECK(in[1] + 2 * opt_.pad_h >= kh_ && in[2] + 2 * opt_.pad_w >= kw_, "layer ", name_,
           ": kernel ", kh_, "x", kw_, " does not fit input ", shape_str(in));
  return {out_c_, oh, ow};
}

int64_t Conv2d::macs(const Shape& in) const {
  Shape out = output_shape(in);
  return out[0] * out[1] * out[2] * int64_t(in_c_) * kh_ * kw_;
}

std::vector<Parameter*> Conv2d::parameters() {
  std::vector<Parameter*> p{weight_.get()};
  if (bias_) p.push_back(bias_.get());
  return p;
}

std::string Conv2d::describe() const {
  std::ostringstream os;
  os << name_ << ": conv2d " << in_c_ << " -> " << out_c_ << " " << kh_ << "x" << kw_;
  if (opt_.stride_h != 1 || opt_.stride_w != 1) os << " stride " << opt_.stride_h << "x" << opt_.stride_w;
  if (opt_.pad_h || opt_.pad_w) os << " pad " << opt_.pad_h << "x" << opt_.pad_w;
  if (!bias_) os << " (no bias)";
  return os.str();
}

Pool2d::Pool2d(std::string name, Kind kind, Pool2dOptions opt)
    : Module(std::move(name)), kind_(kind), opt_(opt) {}

Variable Pool2d::forward(const Variable& x) {
  return kind_ == Kind::max ? max_pool2d(x, opt_) : avg_pool2d(x, opt_);
}

Shape Pool2d::output_shape(const Shape& in) const {
  ST_CHECK(in.size() == 3, "layer ", name_, " expects (C, H, W) inputs, gets ", shape_str(in));
  ST_CHECK(in[1] + 2 * opt_.pad_h >= opt_.kernel_h && in[2] + 2 * opt_.pad_w >= opt_.kernel_w,
           "layer ", name_, ": window ", opt_.kernel_h, "x", opt_.kernel_w, " does not fit input ",
           shape_str(in));
  return {in[0], (in[1] + 2 * opt_.pad_h - opt_.kernel_h) / opt_.stride_h + 1,
          (in[2] + 2 * opt_.pad_w - opt_.kernel_w) / opt_.stride_w + 1};
}

std::string Pool2d::describe() const {
  std::ostringstream os;
  os << name_ << ": " << type() << " " << opt_.kernel_h << "x" << opt_.kernel_w << " stride "
     << opt_.stride_h << "x" << opt_.stride_w;
  if (opt_.pad_h || opt_.pad_w) os << " pad " << opt_.pad_h << "x" << opt_.pad_w;
  return os.str();
}

std::string Dropout::describe() const {
  std::ostringstream os;
  os << name_ << ": dropout p=" << p_;
  return os.str();
}

}  // namespace st::models
