// pruning/compact.h — structured compaction: after neuron/filter pruning, a physically smaller dense
// model. A unit (output row) goes when all its weights are masked and its bias is masked (or absent),
// so it outputs exactly 0 and the next weight layer loses the inputs it fed (whole input channels, or
// span = H·W features each after a flatten). The output layer keeps all its units. Element masks
// inside the surviving rows are carried over. Test: tests/experiment/test_pruning_trainer.cpp
// (the compact model scores the same as the masked one).
#pragma once
#include <vector>

#include "models/builder.h"
#include "pruning/layers.h"

namespace st::pruning {

// Kept output units of each prunable layer (model order).
std::vector<std::vector<int64_t>> kept_units(models::Model& model);

// The layer list of the compact model: `specs` (architecture_layers of the original, one per model
// layer) with the linear/conv2d sizes reduced and every layer named as in the original.
std::vector<models::LayerSpec> compact_layer_specs(models::Model& model, const std::vector<models::LayerSpec>& specs,
                                                   const std::vector<std::vector<int64_t>>& kept);

// Copies the surviving weights, biases and masks of `from` into `to` (built from compact_layer_specs).
void copy_compact(models::Model& from, models::Model& to, const std::vector<std::vector<int64_t>>& kept);

}  // namespace st::pruning
