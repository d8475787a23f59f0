// experiment/checkpoint.h — what a run saves and restores (ARCHITECTURE invariant 6), in safetensors:
//   "<param>"                 f32 weights and biases (the checkpoint keys are the parameter names)
//   "optimizer.<param>.<slot>" optimizer state (momentum_buffer | exp_avg, exp_avg_sq)
//   metadata: format, epoch (completed), optimizer_steps, dropout_rng (4 words), config (resolved JSON)
// PyTorch users can read the weights with safetensors.torch.load_file.
#pragma once
#include <string>

#include "core/optim.h"
#include "experiment/config.h"
#include "models/model.h"

namespace st::experiment {

struct CheckpointInfo {
  int epoch = 0;              // epochs completed
  int64_t optimizer_steps = 0;
  nlohmann::json config;      // the resolved config of the run that wrote it
};

void save_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer,
                     int epoch, const Config& config);

// Reads only the metadata (the config is needed to build the model before loading it).
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads weights (all must be present with matching shapes); with an optimizer, its state, step count
// and the model's dropout RNG too (a resume). Errors name the file and the tensor.
CheckpointInfo load_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer);

}  // namespace st::experiment
