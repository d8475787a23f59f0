// models/builder.h — builds a Model from a typed spec: the named architectures (mlp, lenet300,
// lenet5, simplecnn) are written as layer lists and go through the same path as a config's own
// "layers" list, so every network is shape-checked and named the same way:
// conv layers conv1, conv2, ...; linear fc1, fc2, ...; pools pool1, ...; relu1, dropout1, flatten1.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace st::models {

enum class Arch { mlp, lenet300, lenet5, simplecnn, layers };
enum class Init { kaiming_uniform, kaiming_normal, glorot_uniform, glorot_normal, pytorch };
enum class LayerType { linear, conv2d, maxpool2d, avgpool2d, relu, dropout, flatten };

struct LayerSpec {
  LayerType type = LayerType::relu;
  std::string name;  // optional; default by type and position
  int out = 0;       // linear out_features, conv2d out_channels
  int kernel_h = 0, kernel_w = 0;
  int stride_h = 0, stride_w = 0;  // 0 = default (1 for conv, kernel for pools)
  int pad_h = 0, pad_w = 0;
  bool bias = true;
  float p = 0.f;  // dropout
};

// A layer of `type` with `out` units/channels, a k×k kernel and padding `pad` on both sides.
LayerSpec layer_spec(LayerType type, int out = 0, int k = 0, int pad = 0);

struct ModelSpec {
  Arch arch = Arch::mlp;
  std::vector<int> hidden;  // mlp
  Init init = Init::pytorch;
  float dropout = 0.f;      // before the last linear layer of the named architectures
  std::vector<LayerSpec> layers;
};

// The layer list of a named architecture (for "layers", spec.layers itself).
std::vector<LayerSpec> architecture_layers(const ModelSpec& spec, int num_classes);

// input_shape: per sample (C, H, W). Weights are initialized from `seed`; with allocate = false the
// Linear/Conv2d weights are left unset (no storage, nothing drawn) for a checkpoint or a sparse
// initialization to fill, and initialize() then draws the ones still unset.
std::unique_ptr<Model> build_model(const ModelSpec& spec, const Shape& input_shape, int num_classes,
                                   uint64_t seed, bool allocate = true);

// Re-initializes every layer whose weight is dense or unset (weights by `init`, biases as that scheme
// does); an unset weight is allocated first. Layers with a sparse weight are left alone (they were
// initialized with their pattern).
void initialize(Model& model, Init init, Rng& rng);
// One weight drawn from `init`'s distribution for the given fans (the rule initialize applies to each
// entry, in the same float expressions): pytorch U(±1/√fan_in), kaiming_uniform U(±√(6/fan_in)),
// kaiming_normal N(0, 2/fan_in), glorot_uniform U(±√(6/(fan_in+fan_out))), glorot_normal
// N(0, 2/(fan_in+fan_out)). Sparse initializations (pruning/sparse_pattern.h) draw through it too.
float init_draw(Init init, int64_t fan_in, int64_t fan_out, Rng& rng);

}  // namespace st::models
