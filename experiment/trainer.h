// experiment/trainer.h — the training loop and its run folder.
//   <output.dir>/<name>-<timestamp>/   (or --run-dir)
//     config.json         the resolved config (every key, defaults filled)
//     metrics.jsonl       one JSON line per epoch (with phase, sparsity, nonzeros, storage, MACs, per layer)
//     checkpoint.safetensors   weights, optimizer state, epoch, RNG state, config (atomic)
//     summary.json        final figures (atomic)
// (paths from RunPaths, experiment/run_folder.h). The run goes through named stages (set-up, resume,
// epoch, step, evaluation and reporting, checkpointing, finish): docs/architecture.md section 2.
// Resume (--resume DIR) reads DIR/config.json and DIR/checkpoint.safetensors, drops metrics lines of
// epochs after the checkpoint, and continues: the finished run has exactly the weights an
// uninterrupted one would have (same thread count).
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "distributed/communicator.h"
#include "experiment/config.h"
#include "models/model.h"

namespace st::experiment {

struct RunOptions {
  std::string run_dir;     // empty: <output.dir>/<name>-<timestamp>
  std::string init_from;   // checkpoint whose weights start the run (e.g. prune a trained model)
  std::string resume_dir;  // run folder to continue
  int stop_after_epochs = 0;  // > 0: stop (as if interrupted) after this many epochs in total
  bool quiet = false;         // no per-epoch output
  std::optional<Device> device;  // run there instead of on the config's device (e.g. resume on the
                                // cpu a run started on a GPU); none = the config's
  // The ranks that train this run together (data parallel); nullptr = distributed::world(), the
  // job's (one process unless started by mpirun). A sweep trains each point on one process.
  distributed::Communicator* comm = nullptr;
};

struct EpochMetrics {
  int epoch = 0;  // 1-based, counting fine-tune epochs after train.epochs
  std::string phase = "train";  // "train" | "finetune" (pruning.finetune epochs)
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = -1;  // -1: no validation split
  double test_loss = 0, test_accuracy = 0;
  double lr = 0, epoch_seconds = 0, samples_per_second = 0;
  double sparsity = 0;      // over the prunable weights
  int64_t peak_resident_bytes = -1;  // this process's peak resident memory so far (-1: unknown)
  // A batch in parts (train.micro_batches > 1 or several ranks; ranks 0 otherwise): the ranks and
  // parts; the bytes summed per step (payload: the gradient floats, a sparse layer's nonzeros only,
  // and two floats per part), the bytes all ranks sent per step to sum them, and rank 0's seconds
  // in that sum over the epoch.
  int ranks = 0, parts = 0;
  int64_t exchange_payload_bytes = 0;
  double exchange_bytes_per_step = 0, exchange_seconds = 0;
  nlohmann::json pruning;   // pruning::Report::to_json(): sparsity, nonzeros, bytes, MACs, per layer
};

struct TrainResult {
  std::string run_dir;
  std::vector<EpochMetrics> epochs;  // the epochs run in this process
  double final_test_accuracy = 0;
  double best_val_accuracy = -1;
  double total_seconds = 0;
};

TrainResult train(const Config& config, const RunOptions& options);
// Reads the saved config of `run_dir` and continues the run.
TrainResult resume(const std::string& run_dir, const RunOptions& options);

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t samples = 0;
};
// Scores the model (eval mode, no grad) over a dataset in batches, on the model's device. With a
// communicator of several ranks, each rank scores a share of the batches and every rank returns the
// whole result, equal to one process's.
EvalResult evaluate(models::Model& model, const data::Dataset& dataset, int batch_size,
                    distributed::Communicator* comm = nullptr);

}  // namespace st::experiment
