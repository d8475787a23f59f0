// models/model.h — a sequential network: the layers, their parameters in a stable order, the
// dropout random stream, and the per-sample input shape it was built for.
// A model is built (and initialized) on the host, so the same seed gives the same weights whatever
// the device; to(device) then moves it. Masks stay on the host on every device (pruning reads and
// edits them there; the optimizer keeps its own device copy).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/module.h"

namespace st::models {

class Model {
 public:
  Model(Shape input_shape, uint64_t seed);
  void add(std::unique_ptr<Module> layer);

  // A CSR conv on the cpu followed by [relu and] a max pool with non-overlapping windows runs as
  // one node (sparse_conv2d_pool in core/ops.h), with the same results as the layers one by one;
  // such nodes in a row pass their activations batch innermost, without NCHW between them.
  // Any other relu followed by a max pool runs as the pool, then the relu (the same numbers).
  // Wide CSR Linear layers in a row on the cpu run feature-major (sparse_linear_fm; see
  // FeatureMajorRule), with the same results to float tolerance.
  Variable forward(const Variable& x);
  // As forward (layer by layer, never fused), and keeps each layer's output value (outputs[i] = output of layers()[i]) for
  // activation-based pruning criteria; the plain forward stays free of this bookkeeping.
  Variable forward_collect(const Variable& x, std::vector<Tensor>& outputs);
  void set_training(bool t);

  // Moves every parameter (its value and gradient, or its CSR state) to `device`.
  void to(Device device);
  Device device() const { return device_; }
  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape() const;
  const std::vector<std::unique_ptr<Module>>& layers() const { return layers_; }
  // All parameters, in layer order (weight before bias): the checkpoint order.
  const std::vector<Parameter*>& parameters() const { return params_; }
  Parameter* find_parameter(const std::string& name) const;
  int64_t num_parameters() const;
  int64_t macs_per_sample() const;
  Rng& dropout_rng() { return dropout_rng_; }

  // When a run of two or more CSR Linear layers on the cpu goes feature-major: its widest layer
  // (input or output) has at least min_width units and its nonzeros per input column, over the
  // run, are fewer than max_fan_out (docs/design.md, "Wide sparse MLPs"). Tests lower min_width.
  struct FeatureMajorRule {
    int min_width = 65536;
    double max_fan_out = 16;
  };
  void set_feature_major_rule(const FeatureMajorRule& r) { feature_major_ = r; }
  const FeatureMajorRule& feature_major_rule() const { return feature_major_; }
  std::string summary() const;  // one line per layer, with output shapes and parameter counts

 private:
  size_t conv_pool_block(size_t i) const;
  size_t fused_conv_pool(size_t i, Variable& h);
  size_t fused_sparse_linears(size_t i, Variable& h);
  size_t fused_sparse_linear_relu(size_t i, Variable& h);
  size_t pool_before_relu(size_t i, Variable& h);

  Shape input_shape_;
  std::vector<std::unique_ptr<Module>> layers_;
  std::vector<Parameter*> params_;
  Rng dropout_rng_;
  Device device_ = Device::cpu;
  FeatureMajorRule feature_major_;
};

}  // namespace st::models
