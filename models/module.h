// models/module.h — layers as modules. A Module maps a batch Variable to a batch Variable, knows its
// per-sample output shape (so a model is shape-checked when it is built, not mid-run), and owns its
// named Parameters in a stable order ("<layer>.weight", "<layer>.bias").
// Linear and Conv2d execute in CSR (core/ops.h sparse_linear/sparse_conv2d) while their weight is
// sparse (Parameter::csr set); pruning/csr_switch.h decides when. Built with allocate = false their
// weight is unset (core/parameter.h) until a checkpoint or a sparse initialization fills it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/parameter.h"

namespace st::models {

class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  virtual const char* type() const = 0;
  // x: (N, ...per-sample shape) -> (N, ...output_shape)
  virtual Variable forward(const Variable& x) = 0;
  // Per-sample shapes, without the batch dimension.
  virtual Shape output_shape(const Shape& in) const = 0;
  virtual std::vector<Parameter*> parameters() { return {}; }
  // Multiply-accumulates per sample in the forward pass (dense).
  virtual int64_t macs(const Shape& in) const { return 0; }
  virtual std::string describe() const = 0;

  const std::string& name() const { return name_; }
  void set_training(bool t) { training_ = t; }
  bool training() const { return training_; }

 protected:
  std::string name_;
  bool training_ = true;
};

class Linear : public Module {
 public:
  Linear(std::string name, int in_features, int out_features, bool bias, bool allocate = true);
  const char* type() const override { return "linear"; }
  Variable forward(const Variable& x) override;
  Shape output_shape(const Shape& in) const override;
  std::vector<Parameter*> parameters() override;
  int64_t macs(const Shape& in) const override { return int64_t(in_) * out_; }
  std::string describe() const override;
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_.get(); }
  int in_features() const { return in_; }
  int out_features() const { return out_; }

 private:
  int in_, out_;
  std::unique_ptr<Parameter> weight_, bias_;
};

class Conv2d : public Module {
 public:
  Conv2d(std::string name, int in_channels, int out_channels, int kh, int kw, Conv2dOptions opt,
         bool bias, bool allocate = true);
  const char* type() const override { return "conv2d"; }
  Variable forward(const Variable& x) override;
  Shape output_shape(const Shape& in) const override;
  std::vector<Parameter*> parameters() override;
  int64_t macs(const Shape& in) const override;
  std::string describe() const override;
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_.get(); }
  const Conv2dOptions& options() const { return opt_; }

 private:
  int in_c_, out_c_, kh_, kw_;
  Conv2dOptions opt_;
  std::unique_ptr<Parameter> weight_, bias_;
};

class Pool2d : public Module {
 public:
  enum class Kind { max, avg };
  Pool2d(std::string name, Kind kind, Pool2dOptions opt);
  const char* type() const override { return kind_ == Kind::max ? "maxpool2d" : "avgpool2d"; }
  Variable forward(const Variable& x) override;
  Shape output_shape(const Shape& in) const override;
  std::string describe() const override;
  Kind kind() const { return kind_; }
  const Pool2dOptions& options() const { return opt_; }

 private:
  Kind kind_;
  Pool2dOptions opt_;
};

class ReLU : public Module {
 public:
  using Module::Module;
  const char* type() const override { return "relu"; }
  Variable forward(const Variable& x) override { return relu(x); }
  Shape output_shape(const Shape& in) const override { return in; }
  std::string describe() const override { return name_ + ": relu"; }
};

class Dropout : public Module {
 public:
  Dropout(std::string name, float p, Rng* rng) : Module(std::move(name)), p_(p), rng_(rng) {}
  const char* type() const override { return "dropout"; }
  Variable forward(const Variable& x) override { return dropout(x, p_, training_, *rng_); }
  Shape output_shape(const Shape& in) const override { return in; }
  std::string describe() const override;

 private:
  float p_;
  Rng* rng_;  // the model's dropout stream (checkpointed with the model)
};

class Flatten : public Module {
 public:
  using Module::Module;
  const char* type() const override { return "flatten"; }
  Variable forward(const Variable& x) override { return flatten(x); }
  Shape output_shape(const Shape& in) const override { return {shape_numel(in)}; }
  std::string describe() const override { return name_ + ": flatten"; }
};

}  // namespace st::models
