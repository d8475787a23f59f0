// experiment/trainer.cpp — a training run in named stages (class Training), and evaluation.
#include "experiment/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "core/lr_schedule.h"
#include "core/ops.h"
#include "core/optim.h"
#include "cuda/runtime.h"
#include "data/loader.h"
#include "data/prefetch.h"
#include "distributed/communicator.h"
#include "experiment/atomic_file.h"
#include "experiment/checkpoint.h"
#include "experiment/finite.h"
#include "experiment/memory_estimate.h"
#include "experiment/progress.h"
#include "experiment/run_folder.h"
#include "experiment/run_summary.h"
#include "experiment/setup.h"
#include "kernels/isa.h"
#include "pruning/csr_switch.h"
#include "pruning/hooks.h"
#include "pruning/pruner.h"
#include "pruning/report.h"

namespace st::experiment {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

nlohmann::json metrics_json(const EpochMetrics& m) {
  nlohmann::json j;
  j["epoch"] = m.epoch;
  j["train_loss"] = m.train_loss;
  j["train_accuracy"] = m.train_accuracy;
  if (m.val_accuracy >= 0) {
    j["val_loss"] = m.val_loss;
    j["val_accuracy"] = m.val_accuracy;
  }
  j["test_loss"] = m.test_loss;
  j["test_accuracy"] = m.test_accuracy;
  j["lr"] = m.lr;
  j["epoch_seconds"] = m.epoch_seconds;
  j["samples_per_second"] = m.samples_per_second;
  j["phase"] = m.phase;
  if (m.peak_resident_bytes >= 0) j["peak_resident_bytes"] = m.peak_resident_bytes;
  if (m.ranks > 0) {
    j["ranks"] = m.ranks;
    j["micro_batches"] = m.parts;
    j["exchange_bytes_per_step"] = m.exchange_bytes_per_step;
    j["exchange_seconds"] = m.exchange_seconds;
    j["exchange_payload_bytes"] = m.exchange_payload_bytes;
  }
  for (const auto& [k, v] : m.pruning.items()) j[k] = v;
  return j;
}

// Keeps the first `epochs` lines of metrics.jsonl (those the checkpoint covers).
void truncate_metrics(const std::string& path, int epochs) {
  std::ifstream in(path);
  std::string line, kept;
  for (int i = 0; i < epochs && std::getline(in, line); ++i) kept += line + "\n";
  write_file_atomic(path, kept);
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  ST_CHECK(out.good(), path, ": cannot append metrics");
  out << line << "\n";
  out.flush();
  ST_CHECK(out.good(), path, ": write failed");
}

// Batches for data-dependent pruning criteria: the training set in an order seeded by (seed, pass)
// alone, from a loader of its own, so scoring never disturbs the training order and a resumed run
// scores with the same batches.
class TrainBatches : public pruning::BatchSource {
 public:
  TrainBatches(const data::Dataset& set, int batch, uint64_t seed)
      : loader_(set, batch, /*shuffle=*/true, seed ^ 0x6a09e667f3bcc909ULL),
        x_({batch, set.channels, set.height, set.width}), y_({batch}, DType::i32) {}
  void begin(int64_t pass) override { loader_.start_epoch(static_cast<int>(pass % 1000000007)); }
  bool next(Tensor& x, Tensor& y) override {
    const int n = loader_.next(x_.f32(), y_.i32());
    if (n == 0) return false;
    x = x_.leading(n);
    y = y_.leading(n);
    return true;
  }

 private:
  data::Loader loader_;
  Tensor x_, y_;
};

// The teacher of knowledge distillation: built from the config saved in its checkpoint.
std::unique_ptr<models::Model> load_teacher(const std::string& target, const Shape& input, int classes) {
  const std::string ckpt = checkpoint_file(target, "pruning.distill.teacher");
  CheckpointInfo info = read_checkpoint_info(ckpt);
  Config tc = parse_config(info.config, ckpt + " (config)");
  auto teacher = models::build_model(model_spec(tc), input, classes, tc.seed, /*allocate=*/false);
  load_checkpoint(ckpt, *teacher, nullptr);
  teacher->set_training(false);
  return teacher;
}

// Every line of metrics.jsonl (also those from before a resume), and the best validation accuracy
// among them (-1: none).
std::vector<nlohmann::json> read_metrics(const std::string& path, double& best_val) {
  std::vector<nlohmann::json> metrics;
  std::ifstream in(path);
  best_val = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    metrics.push_back(nlohmann::json::parse(line));
    if (metrics.back().contains("val_accuracy"))
      best_val = std::max(best_val, metrics.back()["val_accuracy"].get<double>());
  }
  return metrics;
}

// summary.json and the closing lines on screen, over every epoch of the run.
void write_summary(const Config& config, models::Model& model, int threads, int ranks, const RunPaths& files,
                   const TrainResult& result, bool quiet) {
  double best_val = -1;
  const std::vector<nlohmann::json> metrics = read_metrics(files.metrics, best_val);
  std::error_code ec;
  const auto ckpt_size = fs::file_size(files.checkpoint, ec);
  const RunSummary summary =
      summarize_run(metrics, files.dir, ec ? int64_t{-1} : static_cast<int64_t>(ckpt_size));
  nlohmann::json s = summary.to_json();
  s["name"] = config.name;
  s["epochs"] = summary.epochs;
  s["final"] = metrics.back();
  if (best_val >= 0) s["best_val_accuracy"] = best_val;
  s["test_accuracy"] = summary.test_accuracy;
  s["parameters"] = model.num_parameters();
  s["macs_per_sample"] = model.macs_per_sample();
  const pruning::Report final_report = pruning::make_report(model);
  s["sparsity"] = final_report.sparsity;
  s["nonzeros"] = final_report.nonzeros;
  s["macs_remaining"] = final_report.macs;
  s["threads"] = threads;
  s["ranks"] = ranks;
  s["device"] = to_string(config.device);
  s["seconds_this_process"] = result.total_seconds;
  write_file_atomic(files.summary, s.dump(2) + "\n");
  if (!quiet) {
    std::printf("%s", summary.to_text().c_str());
    std::fflush(stdout);
  }
}

// The run folder, locked for this process before anything in it is read (a resume, or a --run-dir
// that exists), and refused when a new run would replace a run that is there or a resume has
// nothing left to do (it would only rewrite the summary). A folder still to be created is claimed
// by start_writing.
void hold_run_folder(const RunPaths& files, bool resuming, std::optional<RunFolderLock>& lock) {
  if (!resuming && !fs::exists(files.dir)) return;
  lock.emplace(files.dir);
  if (!resuming) refuse_existing_run(files.dir);
  ST_CHECK(!resuming || !fs::exists(files.summary), "run folder \"", files.dir, "\" holds a finished run (",
           kSummaryFileName, "): there is nothing to resume");
}

// The first write into the run folder: only once everything that can refuse the run (config, data,
// model, checkpoints, pruner, device) has, so a failing command leaves the folder as it was.
void start_writing(const Config& config, const RunPaths& files, bool resuming, int start_epoch,
                   std::optional<RunFolderLock>& lock) {
  if (!lock) {
    fs::create_directories(files.dir);
    lock.emplace(files.dir);
    refuse_existing_run(files.dir);  // again under the lock: another process may have made it meanwhile
  }
  remove_stale_temporaries(files.dir);
  if (resuming) {
    truncate_metrics(files.metrics, start_epoch);
    return;
  }
  write_file_atomic(files.config, to_json(config).dump(2) + "\n");
  write_file_atomic(files.metrics, "");
}

// Sums over the steps of one epoch.
struct EpochTotals {
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  int64_t steps = 0;
  float lr = 0;  // of the last step
  // A batch in parts: this rank's time in the gradient sum (ordered_sum, waiting included) and the
  // bytes it sent there.
  double exchange_seconds = 0;
  int64_t exchange_bytes = 0;
  int64_t payload_bytes = 0;  // what one step sums: the gradient floats and two slots per part (last step)
};

// One run, from its config to its summary, in the stages it goes through: set-up (config -> data,
// model, optimizer, schedule, pruner, teacher, device), resume (checkpoint or --init-from), epoch,
// step, evaluation and reporting, checkpointing, finish. Pruner hooks are reached only through
// hooks_ (pruning/hooks.h), which keeps CSR execution suspended around them.
class Training {
 public:
  Training(const Config& config, const RunOptions& options, const std::string& run_dir, bool resuming,
           distributed::Communicator& comm)
      : config_(config), options_(options), files_(run_dir), resuming_(resuming), comm_(comm),
        writer_(comm.rank() == 0), quiet_(options.quiet || comm.rank() != 0) {}
  TrainResult run();

 private:
  // Set-up.
  void set_up();
  void apply_process_settings_and_device();
  void build_data_and_model();
  void build_pruner_and_teacher();
  void resume_or_init();
  void move_to_device();
  pruning::CsrSwitchOptions csr_switch_options() const;
  void print_header() const;
  void prepare_batches();
  void start_pruner_and_csr();
  void print_parameter_bytes();
  void plan_parts();
  // Epoch and step.
  void run_epoch(int epoch);
  void step(int epoch, int64_t b, EpochTotals& totals);
  void step_in_parts(int epoch, int64_t b, EpochTotals& totals);
  void request_batch(int64_t b);
  void seed_dropout(int k);
  int64_t gradient_floats() const;
  void gather_gradients(float* out) const;
  void scatter_gradients(const float* in);
  void check_ranks_run_alike();
  void check_ranks_agree(const std::string& when);
  void check_ranks_agree_if_masks_changed(int epoch);
  Variable loss_of(Variable& logits, const Tensor& x, const Tensor& y);
  float lr_at(int epoch, int64_t b) const;
  bool finetune(int epoch) const { return epoch >= config_.train.epochs; }
  void check_step_finite(int epoch, int64_t b) const;
  void end_epoch_weights(int epoch);
  // Evaluation and reporting.
  EpochMetrics epoch_metrics(int epoch, const EpochTotals& totals, double train_seconds);
  void add_pruning_report(EpochMetrics& m);
  void evaluate_splits(EpochMetrics& m);
  void report_epoch(int epoch, const EpochMetrics& m);
  void print_epoch(const EpochMetrics& m) const;
  // Checkpointing.
  void checkpoint_if_due(int epoch);
  // Finish.
  void finish(Clock::time_point t_start);
  // The CSR switches that pruner hooks (hooks_) and mask changes cause, on screen and in metrics.
  void log_switches(const std::vector<pruning::CsrSwitchEvent>& events, int epoch);

  const Config& config_;
  const RunOptions& options_;
  const RunPaths files_;
  const bool resuming_;
  distributed::Communicator& comm_;
  const bool writer_;  // rank 0: the one process that writes the run folder and prints
  const bool quiet_;   // no output on screen: --quiet, or not rank 0
  bool sparse_start_ = false;  // a fresh run whose pruned layers start sparse (pruning::starts_sparse)
  std::optional<RunFolderLock> lock_;
  int threads_ = 0;
  st::Device device_ = st::Device::cpu;
  bool on_device_ = false, tty_ = false;
  data::DatasetSplits data_;
  Shape input_;
  std::unique_ptr<models::Model> model_;
  std::vector<Parameter*> params_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  pruning::PruningConfig pcfg_;
  std::unique_ptr<pruning::Pruner> pruner_;
  std::unique_ptr<models::Model> teacher_;
  Tensor teacher_logits_;
  std::unique_ptr<pruning::CsrSwitch> csr_;
  std::unique_ptr<pruning::HookRunner> hooks_;  // the pruner's hooks, CSR suspended around them
  nlohmann::json switches_ = nlohmann::json::array();  // this epoch's switches (metrics.jsonl)
  std::unique_ptr<data::Loader> loader_;
  // Batch buffers are allocated once, two of each: the loader's thread (prefetch_) copies batch b+1
  // into one while step b trains on the other. A short last batch is a view of their first rows.
  // On a device each batch is uploaded into the device buffers.
  Tensor x_buf_[2], y_buf_[2], x_dev_, y_dev_;
  int64_t batches_ = 0;
  std::unique_ptr<TrainBatches> score_batches_;
  int start_epoch_ = 0, total_epochs_ = 0, last_epoch_ = 0;
  int64_t global_step_ = 0;
  // A batch in parts (train.micro_batches, ranks): this rank computes parts [part_first_,
  // part_last_) of parts_, each part's gradient into its own buffer (its loss and correct count in
  // two slots per part after the gradients), then all parts are summed in order (ordered_sum).
  bool in_parts_ = false;
  int parts_ = 1, part_first_ = 0, part_last_ = 1;
  std::vector<float> x_parts_[2];  // this rank's share of a batch, double-buffered like x_buf_
  std::vector<int32_t> y_parts_[2];
  // After every buffer it writes into and the loader it drives: destroyed first (it waits for a copy
  // in flight).
  std::unique_ptr<data::BatchPrefetcher> prefetch_;
  std::vector<std::vector<float>> part_grads_;
  std::vector<float> grad_total_;
  int64_t mask_versions_ = -1;  // the sum of the parameters' mask versions at the last rank check
  TrainResult result_;
};

TrainResult Training::run() {
  const auto t_start = Clock::now();
  set_up();
  result_.run_dir = files_.dir;
  last_epoch_ = options_.stop_after_epochs > 0 ? std::min(total_epochs_, options_.stop_after_epochs)
                                               : total_epochs_;
  for (int epoch = start_epoch_; epoch < last_epoch_; ++epoch) run_epoch(epoch);
  finish(t_start);
  return result_;
}

// ---- Set-up ------------------------------------------------------------------------------------

void Training::set_up() {
  if (writer_) hold_run_folder(files_, resuming_, lock_);
  check_memory(config_);  // a model or dataset too big for the machine: refused, naming its keys
  apply_process_settings_and_device();
  build_data_and_model();
  build_pruner_and_teacher();
  resume_or_init();
  move_to_device();
  // CSR execution: decided at start (or restored from the checkpoint) and after every mask change.
  csr_ = std::make_unique<pruning::CsrSwitch>(csr_switch_options(), *model_);
  hooks_ = std::make_unique<pruning::HookRunner>(pruner_.get(), *csr_, *model_, *optimizer_, device_);
  print_header();
  prepare_batches();
  start_pruner_and_csr();
  print_parameter_bytes();
  plan_parts();
  if (comm_.size() > 1) {
    check_ranks_run_alike();
    check_ranks_agree("at the start");
    comm_.barrier();  // every rank is set up: only now may rank 0 write
  }
  if (writer_) start_writing(config_, files_, resuming_, start_epoch_, lock_);
}

// How a batch is split: train.micro_batches parts (0: one per rank), each rank a contiguous run of
// them. One part on one rank is the plain step.
void Training::plan_parts() {
  const int ranks = comm_.size(), rank = comm_.rank();
  parts_ = config_.train.micro_batches > 0 ? config_.train.micro_batches : ranks;
  ST_CHECK(parts_ <= config_.train.batch_size, "train.micro_batches = 0 means one part per rank, but ", ranks,
           " ranks are more than train.batch_size = ", config_.train.batch_size);
  ST_CHECK(parts_ % ranks == 0, "train.micro_batches = ", parts_, " cannot be split evenly over ", ranks,
           " ranks: use a multiple of the rank count (or 0, one per rank)");
  in_parts_ = parts_ > 1 || ranks > 1;
  part_first_ = rank * (parts_ / ranks);
  part_last_ = part_first_ + parts_ / ranks;
  if (!in_parts_) return;
  ST_CHECK(!on_device_, "device \"cuda\" trains a batch in one part on one process: set train.micro_batches "
                        "to 0 or 1 and run a single rank (or use device \"cpu\")");
  ST_CHECK(ranks == 1 || !csr_->options().timed, "sparse.threshold \"auto\" times each layer on each rank, "
           "so ranks could execute a layer differently: give sparse.threshold a number when running ", ranks, " ranks");
  const int64_t sample = shape_numel(input_);
  const int local = data::part_begin(config_.train.batch_size, part_last_, parts_) -
                    data::part_begin(config_.train.batch_size, part_first_, parts_) + 1;
  for (int s = 0; s < 2; ++s) {
    x_parts_[s].resize(static_cast<size_t>(local * sample));
    y_parts_[s].resize(static_cast<size_t>(local));
  }
  part_grads_.resize(static_cast<size_t>(part_last_ - part_first_));
}

// First: a device that is missing fails here, before the run folder is touched.
void Training::apply_process_settings_and_device() {
  threads_ = apply_process_settings(config_);
  device_ = config_.device;
  on_device_ = device_ != st::Device::cpu;
  tty_ = !quiet_ && isatty(fileno(stdout));
}

void Training::build_data_and_model() {
  data_ = data::load_dataset(data_options(config_));
  const data::Dataset& train_set = data_.train;
  input_ = {train_set.channels, train_set.height, train_set.width};
  // Weights that a checkpoint or the sparse start fills are not allocated first: a sparse layer never
  // has a dense matrix (docs/architecture.md invariant 8).
  sparse_start_ = !resuming_ && options_.init_from.empty() && config_.pruning && pruning::starts_sparse(*config_.pruning);
  const bool allocate = !resuming_ && options_.init_from.empty() && !sparse_start_;
  model_ = models::build_model(model_spec(config_), input_, train_set.num_classes, config_.seed, allocate);
  params_ = model_->parameters();
  optimizer_ = std::make_unique<Optimizer>(params_, optimizer_options(config_));
  schedule_ = std::make_unique<LrSchedule>(static_cast<float>(config_.optimizer.lr), config_.train.epochs,
                                           lr_schedule_options(config_));
}

// Built before any training, so layer-dependent config errors surface at start-up.
void Training::build_pruner_and_teacher() {
  if (config_.pruning) {
    pcfg_ = *config_.pruning;
    pruner_ = std::make_unique<pruning::Pruner>(pcfg_, *model_, config_.seed);
    pruner_->set_optimizer(optimizer_.get());
    // RigL regrows on sparse layers from the x and dy their backward keeps (on CUDA its steps run
    // densely); on several ranks they are gathered in rank order, which is part order.
    pruning::Pruner::FactorExchange exchange;
    if (comm_.size() > 1)
      exchange = [&comm = comm_](CsrWeight::GradientFactors& f, int in, int out) {
        std::vector<int64_t> rows(static_cast<size_t>(comm.size()));
        comm.allgather(&f.rows, sizeof f.rows, rows.data());
        auto gather = [&](std::vector<float>& v, int width) {  // each rank's rows into place
          std::vector<int64_t> bounds(1, 0);
          for (int64_t n : rows) bounds.push_back(bounds.back() + n * width);
          std::vector<float> all(static_cast<size_t>(bounds.back()));
          std::copy(v.begin(), v.end(), all.begin() + bounds[static_cast<size_t>(comm.rank())]);
          comm.allgather_slices(all.data(), bounds);
          v = std::move(all);
        };
        gather(f.x, in);
        gather(f.dy, out);
        f.rows = std::accumulate(rows.begin(), rows.end(), int64_t{0});
      };
    pruner_->set_sparse_regrowth(device_ == st::Device::cpu, std::move(exchange));
  }
  total_epochs_ = config_.train.epochs + (pruner_ ? pcfg_.finetune.epochs : 0);
  if (pruner_ && pcfg_.distill.enabled)
    teacher_ = load_teacher(pcfg_.distill.teacher, input_, data_.train.num_classes);
}

// Resume: the state of the checkpoint; --init-from: its weights and masks (a pruned model stays
// pruned); a sparse start: the pruned layers drawn sparse (pattern and values), then the rest
// initialized as build_model would, from the same seed.
void Training::resume_or_init() {
  if (resuming_) {
    start_epoch_ = load_checkpoint(files_.checkpoint, *model_, optimizer_.get(), pruner_.get()).epoch;
  } else if (!options_.init_from.empty()) {
    load_checkpoint(options_.init_from, *model_, nullptr);
  } else if (sparse_start_) {
    const models::Init init = model_spec(config_).init;
    Rng rng(config_.seed);
    pruner_->start_sparse(init, rng);
    models::initialize(*model_, init, rng);
  }
}

// Built, initialized and loaded on the host; from here on the model, its optimizer state and the
// teacher live on the run's device.
void Training::move_to_device() {
  model_->to(device_);
  optimizer_->to(device_);
  if (teacher_) teacher_->to(device_);
}

pruning::CsrSwitchOptions Training::csr_switch_options() const {
  pruning::CsrSwitchOptions csr_opt;
  csr_opt.enabled = config_.sparse.enabled;
  csr_opt.threshold = csr_threshold(config_, &csr_opt.timed);
  csr_opt.batch_size = config_.train.batch_size;
  return csr_opt;
}

void Training::print_header() const {
  if (quiet_) return;
  std::string where = std::to_string(threads_) + " threads, cpu kernels " +
                      kernels::isa_name(kernels::active_isa());
  if (on_device_) {
    const cuda::DeviceInfo info = cuda::device_info();
    where += " | cuda: " + (info.emulated ? std::string("CPU emulator") : info.name);
  }
  std::printf("%s\n%s\nrun folder %s | %s | %s data: %lld train, %lld validation, %lld test\n",
              describe(config_).c_str(), model_->summary().c_str(), files_.dir.c_str(), where.c_str(),
              to_string(config_.data.dataset), static_cast<long long>(data_.train.size),
              static_cast<long long>(data_.validation.size), static_cast<long long>(data_.test.size));
  const MemoryEstimate memory = estimate_memory(config_);
  std::printf("memory: at least %s (parameters with gradients and optimizer state %s, a batch's activations %s, "
              "data %s)\n", bytes_text(memory.total()).c_str(), bytes_text(memory.parameter_bytes).c_str(),
              bytes_text(memory.activation_bytes).c_str(), bytes_text(memory.dataset_bytes).c_str());
  if (resuming_) std::printf("resuming after epoch %d\n", start_epoch_);
  if (comm_.size() > 1 || config_.train.micro_batches > 1) {
    const int parts = config_.train.micro_batches > 0 ? config_.train.micro_batches : comm_.size();
    std::printf("data parallel: %d rank%s over %s, each batch of %d in %d parts summed in a fixed order\n",
                comm_.size(), comm_.size() == 1 ? "" : "s", comm_.transport().c_str(), config_.train.batch_size, parts);
  }
  std::fflush(stdout);
}

void Training::prepare_batches() {
  const int B = config_.train.batch_size;
  loader_ = std::make_unique<data::Loader>(data_.train, B, config_.data.shuffle, config_.seed);
  for (int s = 0; s < 2; ++s) {
    x_buf_[s] = Tensor({B, input_[0], input_[1], input_[2]});
    y_buf_[s] = Tensor({B}, DType::i32);
  }
  if (on_device_) {
    x_dev_ = x_buf_[0].to(device_);
    y_dev_ = y_buf_[0].to(device_);
  }
  batches_ = loader_->num_batches();
  prefetch_ = std::make_unique<data::BatchPrefetcher>(*loader_);
  score_batches_ = std::make_unique<TrainBatches>(data_.train, B, config_.seed);
}

// A fresh run starts the pruner and decides every layer's mode; a resumed one keeps the modes the
// checkpoint recorded.
void Training::start_pruner_and_csr() {
  if (pruner_) {
    pruner_->set_batch_source(score_batches_.get());
    pruner_->set_steps_per_epoch(batches_);
    if (!resuming_) log_switches(hooks_->start(), 0);
  }
  if (resuming_)
    csr_->adopt();
  else
    log_switches(csr_->update(), start_epoch_);
}

// What the weights, their gradients and the optimizer state take now, in the forms the layers start
// in, beside what the same model takes dense: the figure sparse training is about.
void Training::print_parameter_bytes() {
  if (options_.quiet) return;
  optimizer_->state();  // allocates the state of weights set since the optimizer was built
  int64_t weights = 0, kept = 0;
  double held = static_cast<double>(optimizer_->bytes()), dense = 0;
  const OptimizerOptions& o = optimizer_->options();
  const int slots = o.type == OptimizerType::sgd ? (o.momentum != 0.f ? 1 : 0) : 2;
  for (const Parameter* p : params_) {
    held += static_cast<double>(p->bytes());
    const bool has_grad = p->sparse() ? p->csr->values.has_grad() : p->var.has_grad();
    if (!has_grad) held += 4.0 * static_cast<double>(p->sparse() ? p->csr->nnz() : p->numel());  // a step's
    dense += static_cast<double>(p->numel()) * 4.0 * (2 + slots);
    if (!p->prunable) continue;
    weights += p->numel();
    kept += p->kept();
  }
  if (quiet_) return;
  std::printf("parameters: %lld of %lld weights nonzero; held %s with gradients and optimizer state (dense: %s)\n",
              static_cast<long long>(kept), static_cast<long long>(weights), bytes_text(held).c_str(),
              bytes_text(dense).c_str());
  std::fflush(stdout);
}

// ---- Epoch and step ----------------------------------------------------------------------------

void Training::run_epoch(int epoch) {
  const auto t_epoch = Clock::now();
  model_->set_training(true);
  loader_->start_epoch(epoch);
  request_batch(0);
  log_switches(hooks_->epoch_begin(epoch), epoch);
  check_ranks_agree_if_masks_changed(epoch);
  EpochTotals totals;
  Progress progress(tty_, epoch + 1, total_epochs_, batches_);
  for (int64_t b = 0; b < batches_; ++b) {
    if (in_parts_)
      step_in_parts(epoch, b, totals);
    else
      step(epoch, b, totals);
    progress.update(b + 1, totals.loss_sum / totals.seen, static_cast<double>(totals.correct) / totals.seen);
  }
  end_epoch_weights(epoch);
  log_switches(hooks_->epoch_end(epoch), epoch);
  if (comm_.size() > 1) check_ranks_agree("after epoch " + std::to_string(epoch + 1));
  const EpochMetrics m = epoch_metrics(epoch, totals, seconds_since(t_epoch));
  progress.finish();
  report_epoch(epoch, m);
}

// Starts the copy of this epoch's batch `b` into buffer b % 2 on the loader's thread; the step
// before it trains on the other buffer meanwhile.
void Training::request_batch(int64_t b) {
  const size_t slot = static_cast<size_t>(b % 2);
  if (in_parts_)
    prefetch_->request(part_first_, part_last_, parts_, x_parts_[slot].data(), y_parts_[slot].data());
  else
    prefetch_->request(x_buf_[slot].f32(), y_buf_[slot].i32());
}

// One optimizer step on batch `b` of `epoch`.
void Training::step(int epoch, int64_t b, EpochTotals& totals) {
  const int n = prefetch_->wait();
  const int slot = static_cast<int>(b % 2);
  if (b + 1 < batches_) request_batch(b + 1);
  const Tensor x_host = x_buf_[slot].leading(n), y_host = y_buf_[slot].leading(n);
  Tensor x = x_host, y = y_host;
  if (on_device_) {
    x = x_dev_.leading(n);
    y = y_dev_.leading(n);
    x.copy_from(x_host);
    y.copy_from(y_host);
  }
  global_step_ = static_cast<int64_t>(epoch) * batches_ + b;
  hooks_->begin_step(epoch, global_step_);  // a step whose pruner hook acts runs densely
  Variable logits = model_->forward(Variable(x));
  Variable loss = loss_of(logits, x, y);
  const float loss_value = loss.value().item();  // from a device: one float per step
  ST_CHECK(std::isfinite(loss_value), "training diverged: the loss is ", loss_value, " at epoch ", epoch + 1,
           ", step ", b + 1, " (lower optimizer.lr, or add lr_schedule.warmup_epochs)");
  totals.loss_sum += static_cast<double>(loss_value) * n;
  totals.correct += count_correct(logits.value(), y_host);
  totals.seen += n;
  optimizer_->zero_grad();
  loss.backward();
  log_switches(hooks_->end_step(), epoch);  // after backward, before the optimizer step
  totals.lr = lr_at(epoch, b);
  optimizer_->step(totals.lr);
  check_step_finite(epoch, b);
}

// One optimizer step on batch `b` of `epoch`, the batch in parts: each of this rank's parts runs
// forward and backward on its own (its loss scaled by its share of the batch), its gradients land in
// a buffer of their own, and ordered_sum adds every rank's parts in part order, so the summed
// gradient has the same bits on any number of ranks. The per-part losses and correct counts travel
// in the same buffer (a slot each, zero in every other part), so every rank ends with the same epoch
// totals. Dropout draws from a stream seeded by (seed, step, part), not by what ran before.
void Training::step_in_parts(int epoch, int64_t b, EpochTotals& totals) {
  const int n = prefetch_->wait();
  const size_t slot = static_cast<size_t>(b % 2);
  if (b + 1 < batches_) request_batch(b + 1);
  const std::vector<float>& x_parts = x_parts_[slot];
  const std::vector<int32_t>& y_parts = y_parts_[slot];
  global_step_ = static_cast<int64_t>(epoch) * batches_ + b;
  hooks_->begin_step(epoch, global_step_);  // a step whose pruner hook acts runs densely
  const int64_t grads = gradient_floats(), count = grads + 2 * int64_t{parts_};
  const int64_t sample = shape_numel(input_);
  const int base = data::part_begin(n, part_first_, parts_);
  std::vector<const float*> parts;
  for (int k = part_first_; k < part_last_; ++k) {
    std::vector<float>& g = part_grads_[static_cast<size_t>(k - part_first_)];
    g.resize(static_cast<size_t>(count));  // grows only when a mask change adds nonzeros
    std::fill(g.begin() + grads, g.end(), 0.f);
    parts.push_back(g.data());
    const int lo = data::part_begin(n, k, parts_), m = data::part_begin(n, k + 1, parts_) - lo;
    if (m == 0) {  // more parts than samples in a short last batch
      std::fill(g.begin(), g.begin() + grads, 0.f);
      continue;
    }
    std::copy_n(x_parts.data() + (lo - base) * sample, m * sample, x_buf_[0].f32());
    std::copy_n(y_parts.data() + (lo - base), m, y_buf_[0].i32());
    const Tensor x = x_buf_[0].leading(m), y = y_buf_[0].leading(m);
    seed_dropout(k);
    Variable logits = model_->forward(Variable(x));
    Variable loss = loss_of(logits, x, y);
    g[static_cast<size_t>(grads + 2 * k)] = loss.value().item();
    g[static_cast<size_t>(grads + 2 * k + 1)] = static_cast<float>(count_correct(logits.value(), y));
    optimizer_->zero_grad();
    loss.backward(Tensor::full({1}, static_cast<float>(m) / static_cast<float>(n)));
    gather_gradients(g.data());
  }
  seed_dropout(parts_);  // every rank leaves the step with the same stream state (the checkpoint's)
  grad_total_.resize(static_cast<size_t>(count));
  const auto t_exchange = Clock::now();
  const int64_t bytes_before = comm_.bytes_sent();
  distributed::ordered_sum(comm_, parts, count, grad_total_.data());
  totals.exchange_seconds += seconds_since(t_exchange);
  totals.exchange_bytes += comm_.bytes_sent() - bytes_before;
  ++totals.steps;
  totals.payload_bytes = count * 4;
  for (int k = 0; k < parts_; ++k) {
    const float loss_value = grad_total_[static_cast<size_t>(grads + 2 * k)];
    const int m = data::part_begin(n, k + 1, parts_) - data::part_begin(n, k, parts_);
    if (m == 0) continue;
    ST_CHECK(std::isfinite(loss_value), "training diverged: the loss is ", loss_value, " at epoch ", epoch + 1,
             ", step ", b + 1, " (part ", k + 1, " of ", parts_, "; lower optimizer.lr, or add lr_schedule.warmup_epochs)");
    totals.loss_sum += static_cast<double>(loss_value) * m;
    totals.correct += static_cast<int64_t>(grad_total_[static_cast<size_t>(grads + 2 * k + 1)]);
    totals.seen += m;
  }
  scatter_gradients(grad_total_.data());
  log_switches(hooks_->end_step(), epoch);  // after backward, before the optimizer step
  check_ranks_agree_if_masks_changed(epoch);
  totals.lr = lr_at(epoch, b);
  optimizer_->step(totals.lr);
  check_step_finite(epoch, b);
}

// The dropout stream of part k of this step (k = parts_: the state after the step).
void Training::seed_dropout(int k) {
  model_->dropout_rng().seed_with(config_.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(global_step_ + 1)) ^
                                  (0xbf58476d1ce4e5b9ULL * static_cast<uint64_t>(k + 1)));
}

// The gradient floats of one step, in parameter order: a sparse weight's nonzeros, a dense
// parameter's every entry (an unset one none).
int64_t Training::gradient_floats() const {
  int64_t n = 0;
  for (const Parameter* p : params_) n += p->sparse() ? p->csr->nnz() : p->dense() ? p->numel() : 0;
  return n;
}

// The parameters' gradients, in gradient_floats() order, into `out` (a missing gradient as zeros).
void Training::gather_gradients(float* out) const {
  for (const Parameter* p : params_) {
    if (p->unset()) continue;
    const Variable& v = p->sparse() ? p->csr->values : p->var;
    const int64_t n = p->sparse() ? p->csr->nnz() : p->numel();
    if (v.has_grad())
      std::copy_n(v.grad().f32(), n, out);
    else
      std::fill_n(out, n, 0.f);
    out += n;
  }
}

// The summed gradients back into the parameters' gradients.
void Training::scatter_gradients(const float* in) {
  for (Parameter* p : params_) {
    if (p->unset()) continue;
    Variable& v = p->sparse() ? p->csr->values : p->var;
    const int64_t n = p->sparse() ? p->csr->nnz() : p->numel();
    if (!v.has_grad()) v.grad() = p->sparse() ? Tensor({n}) : Tensor(p->shape);
    std::copy_n(in, n, v.grad().f32());
    in += n;
  }
}

// The ranks compute the same bits only with the same config, threads and CPU kernels (each
// instruction set sums in its own order): a difference stops the job at the start, naming it.
void Training::check_ranks_run_alike() {
  struct Setup {
    uint64_t config;
    int32_t threads, isa;
  };
  const std::string config = to_json(config_).dump();
  const Setup mine{distributed::checksum(config.data(), static_cast<int64_t>(config.size())), threads_,
                   static_cast<int32_t>(kernels::active_isa())};
  std::vector<Setup> all(static_cast<size_t>(comm_.size()));
  comm_.allgather(&mine, sizeof mine, all.data());
  for (int r = 1; r < comm_.size(); ++r) {
    const Setup& o = all[static_cast<size_t>(r)];
    ST_CHECK(o.config == all[0].config, "rank ", r, " read a different config than rank 0 (config file or "
             "--set differ between hosts?)");
    ST_CHECK(o.threads == all[0].threads, "rank ", r, " runs ", o.threads, " threads and rank 0 runs ", all[0].threads,
             ": the ranks sum in different orders; give every rank the same count (config key \"threads\")");
    ST_CHECK(o.isa == all[0].isa, "rank ", r, " runs the ", kernels::isa_name(static_cast<kernels::Isa>(o.isa)),
             " CPU kernels and rank 0 the ", kernels::isa_name(static_cast<kernels::Isa>(all[0].isa)),
             " ones, which sum in different orders: set SPARSETRAIN_ISA to a set every host runs");
  }
}

// Every rank must hold the same model: the same initial weights, the same pruning decisions (each
// rank decides from the same weights and summed gradients), the same weights after every step.
// Compares a checksum of each parameter (values, and the sparse structure or the mask) across the
// ranks; a mismatch stops every rank, naming the first parameter that differs.
void Training::check_ranks_agree(const std::string& when) {
  std::vector<uint64_t> mine;
  for (const Parameter* p : params_) {
    uint64_t h = distributed::checksum(nullptr, 0);
    if (p->sparse()) {
      const kernels::CsrMatrix& w = p->csr->w;
      h = distributed::checksum(p->csr->values.value().f32(), p->csr->nnz() * 4, h);
      h = distributed::checksum(w.row_ptr.data(), static_cast<int64_t>(w.row_ptr.size()) * 4, h);
      h = distributed::checksum(w.col_idx.data(), static_cast<int64_t>(w.col_idx.size()) * 4, h);
    } else if (p->dense()) {
      h = distributed::checksum(p->var.value().f32(), p->numel() * 4, h);
      if (p->mask.defined()) h = distributed::checksum(p->mask.u8(), p->numel(), h);
    }
    mine.push_back(h);
  }
  std::vector<uint64_t> all(mine.size() * static_cast<size_t>(comm_.size()));
  comm_.allgather(mine.data(), static_cast<int64_t>(mine.size() * sizeof(uint64_t)), all.data());
  for (int r = 1; r < comm_.size(); ++r)
    for (size_t i = 0; i < mine.size(); ++i)
      ST_CHECK(all[r * mine.size() + i] == all[i], "rank ", r, " holds a different ", params_[i]->name,
               " than rank 0 ", when, ": the ranks no longer train one model (a different build, data "
               "file or thread count on some host?)");
  mask_versions_ = 0;
  for (const Parameter* p : params_) mask_versions_ += p->mask_version;
}

// After a pruner hook: the ranks are compared again when any mask changed.
void Training::check_ranks_agree_if_masks_changed(int epoch) {
  if (comm_.size() == 1) return;
  int64_t versions = 0;
  for (const Parameter* p : params_) versions += p->mask_version;
  if (versions != mask_versions_)
    check_ranks_agree("after the mask change in epoch " + std::to_string(epoch + 1) + " (step " +
                      std::to_string(global_step_ + 1) + ")");
}

// Cross-entropy, or with a teacher the distillation loss (the teacher runs after the student).
Variable Training::loss_of(Variable& logits, const Tensor& x, const Tensor& y) {
  if (!teacher_) return softmax_cross_entropy(logits, y);
  {
    NoGradGuard no_grad;
    teacher_logits_ = teacher_->forward(Variable(x)).value();
  }
  return distillation_loss(logits, y, teacher_logits_, static_cast<float>(pcfg_.distill.temperature),
                           static_cast<float>(pcfg_.distill.alpha));
}

// The schedule's rate at the end of step `b`; fine-tune epochs train at optimizer.lr × lr_scale.
float Training::lr_at(int epoch, int64_t b) const {
  return finetune(epoch) ? static_cast<float>(config_.optimizer.lr * pcfg_.finetune.lr_scale)
                         : schedule_->lr_at(epoch + static_cast<double>(b + 1) / batches_);
}

// On a device once per epoch instead (end_epoch_weights): per step it would download the model.
void Training::check_step_finite(int epoch, int64_t b) const {
  if (!on_device_ && !parameters_finite(params_))
    check_parameters_finite(params_, detail::concat("after epoch ", epoch + 1, ", step ", b + 1));
}

void Training::end_epoch_weights(int epoch) {
  if (on_device_) check_parameters_finite(params_, detail::concat("in epoch ", epoch + 1));
}

// ---- Evaluation and reporting ------------------------------------------------------------------

EpochMetrics Training::epoch_metrics(int epoch, const EpochTotals& totals, double train_seconds) {
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.phase = finetune(epoch) ? "finetune" : "train";
  add_pruning_report(m);
  m.train_loss = totals.loss_sum / std::max<int64_t>(totals.seen, 1);
  m.train_accuracy = static_cast<double>(totals.correct) / std::max<int64_t>(totals.seen, 1);
  evaluate_splits(m);
  m.lr = totals.lr;
  m.epoch_seconds = train_seconds;
  m.samples_per_second = totals.seen / train_seconds;
  m.peak_resident_bytes = peak_resident_bytes();
  if (in_parts_) {
    // Every rank's bytes, summed; rank 0's exchange time.
    std::vector<int64_t> bytes(static_cast<size_t>(comm_.size()));
    comm_.allgather(&totals.exchange_bytes, sizeof(int64_t), bytes.data());
    int64_t all = 0;
    for (int64_t b : bytes) all += b;
    m.ranks = comm_.size();
    m.parts = parts_;
    m.exchange_bytes_per_step = static_cast<double>(all) / std::max<int64_t>(totals.steps, 1);
    m.exchange_seconds = totals.exchange_seconds;
    m.exchange_payload_bytes = totals.payload_bytes;
  }
  return m;
}

// Sparsity, nonzeros, storage and MACs per layer, each layer's execution mode, and the epoch's
// CSR switches.
void Training::add_pruning_report(EpochMetrics& m) {
  const pruning::Report report = pruning::make_report(*model_);
  m.sparsity = report.sparsity;
  m.pruning = report.to_json();
  for (const auto& [layer, mode] : csr_->modes())
    if (m.pruning.contains("layers") && m.pruning["layers"].contains(layer + ".weight"))
      m.pruning["layers"][layer + ".weight"]["mode"] = mode;
  m.pruning["switches"] = switches_;
  switches_ = nlohmann::json::array();
}

void Training::evaluate_splits(EpochMetrics& m) {
  if (data_.validation.size > 0) {
    EvalResult v = evaluate(*model_, data_.validation, config_.train.eval_batch_size, &comm_);
    m.val_loss = v.loss;
    m.val_accuracy = v.accuracy;
    result_.best_val_accuracy = std::max(result_.best_val_accuracy, v.accuracy);
  }
  EvalResult t = evaluate(*model_, data_.test, config_.train.eval_batch_size, &comm_);
  m.test_loss = t.loss;
  m.test_accuracy = t.accuracy;
}

// One metrics.jsonl line, the checkpoint when due, one line on screen.
void Training::report_epoch(int epoch, const EpochMetrics& m) {
  if (writer_) {
    append_line(files_.metrics, metrics_json(m).dump());
    checkpoint_if_due(epoch);
  }
  print_epoch(m);
  result_.epochs.push_back(m);
  result_.final_test_accuracy = m.test_accuracy;
}

void Training::print_epoch(const EpochMetrics& m) const {
  if (quiet_) return;
  std::printf("epoch %d/%d%s  loss %.4f  train %.2f%%", m.epoch, total_epochs_,
              finetune(m.epoch - 1) ? " (finetune)" : "", m.train_loss, 100 * m.train_accuracy);
  if (m.val_accuracy >= 0) std::printf("  val %.2f%%", 100 * m.val_accuracy);
  std::printf("  test %.2f%%  sparsity %s  lr %.4g  %.1fs  %.0f samples/s\n", 100 * m.test_accuracy,
              sparsity_text(m.sparsity).c_str(), m.lr, m.epoch_seconds, m.samples_per_second);
  std::fflush(stdout);
}

// ---- Checkpointing -----------------------------------------------------------------------------

// At the last epoch, at --stop-after, and every output.checkpoint_every epochs (atomic).
void Training::checkpoint_if_due(int epoch) {
  const bool last = epoch + 1 == total_epochs_;
  const int every = config_.output.checkpoint_every;
  if (last || epoch + 1 == last_epoch_ || (every > 0 && (epoch + 1) % every == 0))
    save_checkpoint(files_.checkpoint, *model_, optimizer_.get(), epoch + 1, config_, pruner_.get());
}

// ---- Finish ------------------------------------------------------------------------------------

// The summary, once the run has reached its last epoch.
void Training::finish(Clock::time_point t_start) {
  result_.total_seconds = seconds_since(t_start);
  if (writer_ && last_epoch_ == total_epochs_)
    write_summary(config_, *model_, threads_, comm_.size(), files_, result_, quiet_);
}

// ---- CSR switches ------------------------------------------------------------------------------

// Each switch on screen and in the epoch's "switches" list of metrics.jsonl.
void Training::log_switches(const std::vector<pruning::CsrSwitchEvent>& events, int epoch) {
  for (const auto& e : events) {
    if (!quiet_) std::printf("%s\n", e.message().c_str());
    switches_.push_back({{"layer", e.layer},
                         {"to", e.to_csr ? "csr" : "dense"},
                         {"sparsity", e.sparsity},
                         {"epoch", epoch + 1},
                         {"step", global_step_},
                         {"reason", e.why}});
  }
  if (!events.empty() && !quiet_) std::fflush(stdout);
}

}  // namespace

EvalResult evaluate(models::Model& model, const data::Dataset& dataset, int batch_size,
                    distributed::Communicator* comm) {
  NoGradGuard no_grad;
  model.set_training(false);
  data::Loader loader(dataset, batch_size, /*shuffle=*/false, 0);
  loader.start_epoch(0);
  const Shape sample{dataset.channels, dataset.height, dataset.width};
  Tensor x_buf({batch_size, sample[0], sample[1], sample[2]});
  Tensor y_buf({batch_size}, DType::i32);
  const Tensor x_dev = x_buf.to(model.device()), y_dev = y_buf.to(model.device());
  // Over several ranks each scores a contiguous run of the batches; the per-batch sums are gathered
  // and added in batch order, as one process adds them.
  const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  const int64_t batches = loader.num_batches();
  const int64_t first = batches * rank / ranks, last = batches * (rank + 1) / ranks;
  std::vector<double> sums(static_cast<size_t>(2 * batches), 0.0);  // per batch: loss × n, correct
  for (int64_t b = 0; b < batches; ++b) {
    if (b < first || b >= last) {
      loader.next_parts(0, 0, 1, nullptr, nullptr);  // another rank's batch: skipped, not copied
      continue;
    }
    const int n = loader.next(x_buf.f32(), y_buf.i32());
    Tensor x = x_dev.leading(n), y = y_dev.leading(n);
    x.copy_from(x_buf.leading(n));
    y.copy_from(y_buf.leading(n));
    Variable logits = model.forward(Variable(x));
    sums[static_cast<size_t>(2 * b)] = static_cast<double>(softmax_cross_entropy(logits, y).value().item()) * n;
    sums[static_cast<size_t>(2 * b + 1)] = static_cast<double>(count_correct(logits.value(), y_buf.leading(n)));
  }
  std::vector<double> all = sums;
  if (ranks > 1) {
    all.resize(sums.size() * static_cast<size_t>(ranks));
    comm->allgather(sums.data(), static_cast<int64_t>(sums.size() * sizeof(double)), all.data());
  }
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t b = 0; b < batches; ++b) {
    int owner = 0;
    while (b >= batches * (owner + 1) / ranks) ++owner;
    const double* s = all.data() + static_cast<size_t>(owner) * sums.size();
    loss_sum += s[2 * b];
    correct += static_cast<int64_t>(s[2 * b + 1]);
    r.samples += std::min<int64_t>(batch_size, dataset.size - b * batch_size);
  }
  model.set_training(true);
  if (r.samples) {
    r.loss = loss_sum / r.samples;
    r.accuracy = static_cast<double>(correct) / r.samples;
  }
  return r;
}

// The config with RunOptions::device applied (an execution setting: the results stay the same to
// float tolerance).
Config on_device_of(Config config, const RunOptions& options) {
  if (options.device) config.device = *options.device;
  return config;
}

TrainResult train(const Config& config_in, const RunOptions& options) {
  const Config config = on_device_of(config_in, options);
  ST_CHECK(options.resume_dir.empty(), "train: use resume() to continue a run");
  distributed::Communicator& comm = options.comm ? *options.comm : distributed::world();
  // Rank 0 names the folder (its clock), every rank uses that name.
  const std::string dir = distributed::broadcast_string(
      comm, options.run_dir.empty() ? new_run_dir(config.output.dir, config.name) : options.run_dir, 0);
  return Training(config, options, dir, /*resuming=*/false, comm).run();
}

TrainResult resume(const std::string& run_dir, const RunOptions& options) {
  const RunPaths files(run_dir);
  ST_CHECK(fs::exists(files.config), run_dir, ": not a run folder (no ", kConfigFileName, ")");
  ST_CHECK(fs::exists(files.checkpoint), run_dir, ": no ", kCheckpointFileName, " to resume from");
  const Config config = on_device_of(load_config(files.config), options);
  return Training(config, options, run_dir, /*resuming=*/true, options.comm ? *options.comm : distributed::world()).run();
}

}  // namespace st::experiment
