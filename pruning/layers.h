// pruning/layers.h — the prunable view of a model: one entry per Linear/Conv2d layer, in model order,
// with its weight as a (rows = output units) × (cols = fan-in = C·KH·KW) matrix, the per-sample shapes
// around it (for MACs), and how its output units feed the next weight layer (for neighbourhood scores
// and structured compaction). Mask helpers keep docs/architecture.md invariant 1: after any mask change the
// weights are multiplied by the mask at once and the optimizer state of masked (and of regrown)
// entries is zeroed.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/optim.h"
#include "models/model.h"

namespace st::pruning {

struct PrunableLayer {
  std::string name;          // layer name ("fc1"); the weight is "<name>.weight"
  int layer_index = 0;       // index in model.layers()
  bool conv = false;
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;  // may be null
  int64_t rows = 0, cols = 0;  // output units, fan-in
  int64_t in_channels = 0;     // conv: C; linear: cols
  int64_t area = 1;            // conv: KH·KW; linear: 1
  int64_t dense_macs = 0;      // per sample
  // Output unit u of this layer feeds input channels [u·span, (u+1)·span) of the next weight layer
  // (dim 1 of its weight; columns [u·span·area, (u+1)·span·area) of its matrix view);
  // next < 0 for the model's last weight layer.
  int next = -1;
  int64_t span = 0;
  int64_t numel() const { return rows * cols; }
};

// Walks the model in order. Throws st::Error when a weight layer's output reaches the next weight
// layer through a layer pruning does not understand (there is none in the built-in layer set).
std::vector<PrunableLayer> prunable_layers(models::Model& model);

// Gives the parameter (dense: masks belong to the dense form) a mask of ones when it has none.
Tensor& ensure_mask(Parameter& p);
// w *= mask (no-op for a dense parameter).
void apply_mask(Parameter& p);
// Number of kept entries: nonzeros when sparse, mask ones when masked, numel otherwise.
int64_t count_kept(const Parameter& p);

// The optimizer state tensors of each parameter, by parameter name ("fc1.weight" -> momentum, ...).
using OptimizerState = std::map<std::string, std::vector<Tensor*>>;
OptimizerState optimizer_state_by_param(Optimizer& opt);

// Installs `new_mask` (u8, same shape) on p: weights of newly pruned entries become 0, regrown entries
// start at weight 0; optimizer state is zeroed at every masked and every regrown entry.
void set_mask(Parameter& p, const std::vector<uint8_t>& new_mask, const OptimizerState* state);

}  // namespace st::pruning
