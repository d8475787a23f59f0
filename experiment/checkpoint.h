// experiment/checkpoint.h — what a run saves and restores (docs/architecture.md invariant 6), in safetensors:
//   "<param>"                 f32 dense weights and biases (the checkpoint keys are the parameter names)
//   "<param>.csr.row_ptr|col_idx|values"  instead of "<param>" for a sparse weight: I32 row offsets
//                             (rows + 1), I32 column indices and F32 values (nnz) over its
//                             (rows × fan-in) view. Their presence restores the sparse form (a file
//                             that also holds "<param>" loads the CSR form); the file is O(nnz) for it.
//   "optimizer.<param>.<slot>" optimizer state (momentum_buffer | exp_avg, exp_avg_sq), in the
//                             parameter's form: dense, or nnz values in CSR order for a sparse weight
//   "mask.<param>"            U8 pruning masks (1 = kept), for every dense parameter that has one
//   "pruning.<what>.<param>"  pruner state: rewind snapshot, ADMM Z and U (when in use)
//   metadata: format, epoch (completed), optimizer_steps, dropout_rng (4 words), config (resolved JSON),
//             pruning_rng (4 words, with a pruner)
// The names are made in experiment/checkpoint_keys.h.
// PyTorch users can read the weights with safetensors.torch.load_file (sparse ones as CSR triples;
// `sparsetrain export` writes every weight dense).
// The file knows no devices: a model on cuda is downloaded to save and loaded through the host, so
// a checkpoint written on one device loads on the other. Tests: tests/experiment/test_cuda_trainer.cpp.
#pragma once
#include <string>

#include "core/optim.h"
#include "experiment/config.h"
#include "models/model.h"
#include "pruning/pruner.h"

namespace st::experiment {

struct CheckpointInfo {
  int epoch = 0;              // epochs completed
  int64_t optimizer_steps = 0;
  nlohmann::json config;      // the resolved config of the run that wrote it
};

void save_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer,
                     int epoch, const Config& config, pruning::Pruner* pruner = nullptr);

// Reads only the metadata (the config is needed to build the model before loading it).
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads weights (all must be present with matching shapes; the model may be built without weights,
// models::build_model allocate = false) and masks (a dense parameter without a "mask.<param>" tensor
// is unmasked; masked weights are zeroed); with an optimizer, its state, step
// count and the model's dropout RNG too (a resume); with a pruner, its state and Rng. Errors name the
// file and the tensor.
CheckpointInfo load_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer,
                               pruning::Pruner* pruner = nullptr);

}  // namespace st::experiment
