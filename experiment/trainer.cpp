#include "experiment/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/lr_schedule.h"
#include "core/ops.h"
#include "core/optim.h"
#include "cuda/runtime.h"
#include "data/loader.h"
#include "experiment/atomic_file.h"
#include "experiment/checkpoint.h"
#include "experiment/finite.h"
#include "experiment/memory_estimate.h"
#include "experiment/progress.h"
#include "experiment/run_folder.h"
#include "experiment/run_summary.h"
#include "experiment/setup.h"
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

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
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
  auto teacher = models::build_model(model_spec(tc), input, classes, tc.seed);
  load_checkpoint(ckpt, *teacher, nullptr);
  teacher->set_training(false);
  return teacher;
}

// summary.json and the closing lines on screen, over every epoch of the run (also those before a
// resume: they come from metrics.jsonl).
void write_summary(const Config& config, models::Model& model, int threads, const std::string& run_dir,
                   const TrainResult& result, bool quiet) {
  std::vector<nlohmann::json> metrics;
  std::ifstream in(run_dir + "/metrics.jsonl");
  double best_val = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    metrics.push_back(nlohmann::json::parse(line));
    if (metrics.back().contains("val_accuracy"))
      best_val = std::max(best_val, metrics.back()["val_accuracy"].get<double>());
  }
  const std::string ckpt = run_dir + "/checkpoint.safetensors";
  std::error_code ec;
  const auto ckpt_size = fs::file_size(ckpt, ec);
  const RunSummary summary =
      summarize_run(metrics, run_dir, ec ? int64_t{-1} : static_cast<int64_t>(ckpt_size));
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
  s["device"] = to_string(config.device);
  s["seconds_this_process"] = result.total_seconds;
  write_file_atomic(run_dir + "/summary.json", s.dump(2) + "\n");
  if (!quiet) {
    std::printf("%s", summary.to_text().c_str());
    std::fflush(stdout);
  }
}

// The run folder, locked for this process before anything in it is read (a resume, or a --run-dir
// that exists), and refused when a new run would replace a run that is there or a resume has
// nothing left to do (it would only rewrite the summary). A folder still to be created is claimed
// by start_writing.
std::optional<RunFolderLock> hold_run_folder(const std::string& dir, bool resuming) {
  if (!resuming && !fs::exists(dir)) return std::nullopt;
  RunFolderLock lock(dir);
  if (!resuming) refuse_existing_run(dir);
  ST_CHECK(!resuming || !fs::exists(dir + "/summary.json"), "run folder \"", dir,
           "\" holds a finished run (summary.json): there is nothing to resume");
  return lock;
}

// The first write into the run folder: only once everything that can refuse the run (config, data,
// model, checkpoints, pruner, device) has, so a failing command leaves the folder as it was.
void start_writing(const Config& config, const std::string& dir, bool resuming, int start_epoch,
                   std::optional<RunFolderLock>& lock) {
  if (!lock) {
    fs::create_directories(dir);
    lock.emplace(dir);
    refuse_existing_run(dir);  // again under the lock: another process may have made it meanwhile
  }
  remove_stale_temporaries(dir);
  if (resuming) {
    truncate_metrics(dir + "/metrics.jsonl", start_epoch);
    return;
  }
  write_file_atomic(dir + "/config.json", to_json(config).dump(2) + "\n");
  write_file_atomic(dir + "/metrics.jsonl", "");
}

TrainResult run(const Config& config, const RunOptions& options, const std::string& run_dir,
                bool resuming) {
  const auto t_start = Clock::now();
  std::optional<RunFolderLock> lock = hold_run_folder(run_dir, resuming);
  check_memory(config);  // a model or dataset too big for the machine: refused, naming its keys
  // First: a device that is missing fails here, before the run folder is touched.
  const int threads = apply_process_settings(config);
  const st::Device device = core_device(config);
  const bool on_device = device != st::Device::cpu;
  const bool tty = !options.quiet && isatty(fileno(stdout));

  data::DatasetSplits data = data::load_dataset(data_options(config));
  const data::Dataset& train_set = data.train;
  const Shape input{train_set.channels, train_set.height, train_set.width};
  auto model = models::build_model(model_spec(config), input, train_set.num_classes, config.seed);
  std::vector<Parameter*> params = model->parameters();
  Optimizer optimizer(params, optimizer_options(config));
  LrSchedule schedule(static_cast<float>(config.optimizer.lr), config.train.epochs,
                      lr_schedule_options(config));

  // Pruning: built before any training, so layer-dependent config errors surface at start-up.
  std::unique_ptr<pruning::Pruner> pruner;
  pruning::PruningConfig pcfg;
  if (!config.pruning.is_null()) {
    pcfg = pruning::parse_pruning_config(config.pruning, config.train.epochs);
    pruner = std::make_unique<pruning::Pruner>(pcfg, *model, config.seed);
    pruner->set_optimizer(&optimizer);
  }
  const int total_epochs = config.train.epochs + (pruner ? pcfg.finetune.epochs : 0);
  std::unique_ptr<models::Model> teacher;
  if (pruner && pcfg.distill.enabled) teacher = load_teacher(pcfg.distill.teacher, input, train_set.num_classes);

  const std::string ckpt_path = run_dir + "/checkpoint.safetensors";
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  int start_epoch = 0;
  if (resuming)
    start_epoch = load_checkpoint(ckpt_path, *model, &optimizer, pruner.get()).epoch;
  else if (!options.init_from.empty())
    load_checkpoint(options.init_from, *model, nullptr);  // masks too: a pruned model stays pruned
  // Built, initialized and loaded on the host; from here on the model, its optimizer state and the
  // teacher live on the run's device.
  model->to(device);
  optimizer.to(device);
  if (teacher) teacher->to(device);
  // CSR execution: decided at start (or restored from the checkpoint) and after every mask change.
  pruning::CsrSwitchOptions csr_opt;
  csr_opt.enabled = config.sparse.enabled;
  csr_opt.threshold = csr_threshold(config, &csr_opt.timed);
  csr_opt.batch_size = config.train.batch_size;
  pruning::CsrSwitch csr(csr_opt, *model);
  nlohmann::json switches = nlohmann::json::array();  // this epoch's switches (metrics.jsonl)
  int64_t global_step = 0;
  auto log_switches = [&](const std::vector<pruning::CsrSwitchEvent>& events, int epoch) {
    for (const auto& e : events) {
      if (!options.quiet) std::printf("%s\n", e.message().c_str());
      switches.push_back({{"layer", e.layer},
                          {"to", e.to_csr ? "csr" : "dense"},
                          {"sparsity", e.sparsity},
                          {"epoch", epoch + 1},
                          {"step", global_step},
                          {"reason", e.why}});
    }
    if (!events.empty() && !options.quiet) std::fflush(stdout);
  };
  // Pruner hooks: CSR suspended around them, the state on the host while they act.
  pruning::HookRunner hooks(pruner.get(), csr, *model, optimizer, device);

  if (!options.quiet) {
    std::string where = std::to_string(threads) + " threads";
    if (on_device) {
      const cuda::DeviceInfo info = cuda::device_info();
      where += " | cuda: " + (info.emulated ? std::string("CPU emulator") : info.name);
    }
    std::printf("%s\n%s\nrun folder %s | %s | %s data: %lld train, %lld validation, %lld test\n",
                describe(config).c_str(), model->summary().c_str(), run_dir.c_str(), where.c_str(),
                to_string(config.data.dataset), static_cast<long long>(train_set.size),
                static_cast<long long>(data.validation.size), static_cast<long long>(data.test.size));
    if (resuming) std::printf("resuming after epoch %d\n", start_epoch);
    std::fflush(stdout);
  }

  const int B = config.train.batch_size;
  data::Loader loader(train_set, B, /*shuffle=*/true, config.seed);
  // Batch buffers are allocated once; a short last batch is a view of their first rows. On a device
  // the loader fills the host buffers and each batch is uploaded into device buffers.
  Tensor x_buf({B, input[0], input[1], input[2]});
  Tensor y_buf({B}, DType::i32);
  const Tensor x_dev = x_buf.to(device), y_dev = y_buf.to(device);
  const int64_t batches = loader.num_batches();
  TrainBatches score_batches(train_set, B, config.seed);
  if (pruner) {
    pruner->set_batch_source(&score_batches);
    pruner->set_steps_per_epoch(batches);
    if (!resuming) log_switches(hooks.start(), 0);
  }
  if (resuming)
    csr.adopt();  // the modes the checkpoint recorded
  else
    log_switches(csr.update(), start_epoch);
  Tensor teacher_logits;
  start_writing(config, run_dir, resuming, start_epoch, lock);

  TrainResult result;
  result.run_dir = run_dir;
  const int last_epoch = options.stop_after_epochs > 0
                             ? std::min(total_epochs, options.stop_after_epochs)
                             : total_epochs;
  for (int epoch = start_epoch; epoch < last_epoch; ++epoch) {
    const auto t_epoch = Clock::now();
    model->set_training(true);
    loader.start_epoch(epoch);
    const bool finetune = epoch >= config.train.epochs;
    log_switches(hooks.epoch_begin(epoch), epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    float lr = 0;
    Progress progress(tty, epoch + 1, total_epochs, batches);
    for (int64_t b = 0; b < batches; ++b) {
      const int n = loader.next(x_buf.f32(), y_buf.i32());
      const Tensor x_host = x_buf.leading(n), y_host = y_buf.leading(n);
      Tensor x = x_dev.leading(n), y = y_dev.leading(n);
      x.copy_from(x_host);  // no-ops on the cpu (the same storage)
      y.copy_from(y_host);
      global_step = static_cast<int64_t>(epoch) * batches + b;
      // A step whose pruner hook acts (RigL, L1, ADMM, step-wise gradual) runs densely.
      hooks.begin_step(epoch, global_step);
      Variable logits = model->forward(Variable(x));
      Variable loss;
      if (teacher) {
        NoGradGuard no_grad;
        teacher_logits = teacher->forward(Variable(x)).value();
      }
      if (teacher)
        loss = distillation_loss(logits, y, teacher_logits, static_cast<float>(pcfg.distill.temperature),
                                 static_cast<float>(pcfg.distill.alpha));
      else
        loss = softmax_cross_entropy(logits, y);
      const float loss_value = loss.value().item();  // from a device: one float per step
      ST_CHECK(std::isfinite(loss_value), "training diverged: the loss is ", loss_value, " at epoch ",
               epoch + 1, ", step ", b + 1, " (lower optimizer.lr, or add lr_schedule.warmup_epochs)");
      loss_sum += static_cast<double>(loss_value) * n;
      correct += count_correct(logits.value(), y_host);
      seen += n;
      optimizer.zero_grad();
      loss.backward();
      log_switches(hooks.end_step(), epoch);
      lr = finetune ? static_cast<float>(config.optimizer.lr * pcfg.finetune.lr_scale)
                    : schedule.lr_at(epoch + static_cast<double>(b + 1) / batches);
      optimizer.step(lr);
      // On a device once per epoch instead (below): per step it would download the model every step.
      if (!on_device && !parameters_finite(params))
        check_parameters_finite(params, detail::concat("after epoch ", epoch + 1, ", step ", b + 1));
      progress.update(b + 1, loss_sum / seen, static_cast<double>(correct) / seen);
    }
    // CSR steps left the dense weights stale (core/csr_weight.h): everything after the step loop
    // (hooks, reports, eval, checkpoints, the caller) sees them current.
    sync_dense_weights(model->parameters());
    if (on_device) check_parameters_finite(params, detail::concat("in epoch ", epoch + 1));
    log_switches(hooks.epoch_end(epoch), epoch);
    const double train_seconds = seconds_since(t_epoch);
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.phase = finetune ? "finetune" : "train";
    const pruning::Report report = pruning::make_report(*model);
    m.sparsity = report.sparsity;
    m.pruning = report.to_json();
    for (const auto& [layer, mode] : csr.modes())
      if (m.pruning.contains("layers") && m.pruning["layers"].contains(layer + ".weight"))
        m.pruning["layers"][layer + ".weight"]["mode"] = mode;
    m.pruning["switches"] = switches;
    switches = nlohmann::json::array();
    m.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    m.train_accuracy = static_cast<double>(correct) / std::max<int64_t>(seen, 1);
    if (data.validation.size > 0) {
      EvalResult v = evaluate(*model, data.validation, config.train.eval_batch_size);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
      result.best_val_accuracy = std::max(result.best_val_accuracy, v.accuracy);
    }
    EvalResult t = evaluate(*model, data.test, config.train.eval_batch_size);
    m.test_loss = t.loss;
    m.test_accuracy = t.accuracy;
    m.lr = lr;
    m.epoch_seconds = train_seconds;
    m.samples_per_second = seen / train_seconds;
    progress.finish();
    append_line(metrics_path, metrics_json(m).dump());
    const bool last = epoch + 1 == total_epochs;
    const int every = config.output.checkpoint_every;
    if (last || epoch + 1 == last_epoch || (every > 0 && (epoch + 1) % every == 0))
      save_checkpoint(ckpt_path, *model, &optimizer, epoch + 1, config, pruner.get());
    if (!options.quiet) {
      std::printf("epoch %d/%d%s  loss %.4f  train %.2f%%", m.epoch, total_epochs,
                  finetune ? " (finetune)" : "", m.train_loss, 100 * m.train_accuracy);
      if (m.val_accuracy >= 0) std::printf("  val %.2f%%", 100 * m.val_accuracy);
      std::printf("  test %.2f%%  sparsity %.1f%%  lr %.4g  %.1fs  %.0f samples/s\n", 100 * m.test_accuracy,
                  100 * m.sparsity, m.lr, m.epoch_seconds, m.samples_per_second);
      std::fflush(stdout);
    }
    result.epochs.push_back(m);
    result.final_test_accuracy = m.test_accuracy;
  }
  result.total_seconds = seconds_since(t_start);
  if (last_epoch == total_epochs) write_summary(config, *model, threads, run_dir, result, options.quiet);
  return result;
}

}  // namespace

EvalResult evaluate(models::Model& model, const data::Dataset& dataset, int batch_size) {
  NoGradGuard no_grad;
  model.set_training(false);
  data::Loader loader(dataset, batch_size, /*shuffle=*/false, 0);
  loader.start_epoch(0);
  const Shape sample{dataset.channels, dataset.height, dataset.width};
  Tensor x_buf({batch_size, sample[0], sample[1], sample[2]});
  Tensor y_buf({batch_size}, DType::i32);
  const Tensor x_dev = x_buf.to(model.device()), y_dev = y_buf.to(model.device());
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int n; (n = loader.next(x_buf.f32(), y_buf.i32())) > 0;) {
    Tensor x = x_dev.leading(n), y = y_dev.leading(n);
    x.copy_from(x_buf.leading(n));
    y.copy_from(y_buf.leading(n));
    Variable logits = model.forward(Variable(x));
    loss_sum += static_cast<double>(softmax_cross_entropy(logits, y).value().item()) * n;
    correct += count_correct(logits.value(), y_buf.leading(n));
    r.samples += n;
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
  if (options.device.empty()) return config;
  ST_CHECK(options.device == "cpu" || options.device == "cuda", "--device: expected \"cpu\" or \"cuda\", got \"",
           options.device, "\"");
  config.device = options.device == "cuda" ? Device::Cuda : Device::Cpu;
  return config;
}

TrainResult train(const Config& config_in, const RunOptions& options) {
  const Config config = on_device_of(config_in, options);
  ST_CHECK(options.resume_dir.empty(), "train: use resume() to continue a run");
  std::string dir = options.run_dir.empty()
                        ? config.output.dir + "/" + config.name + "-" + timestamp()
                        : options.run_dir;
  return run(config, options, dir, /*resuming=*/false);
}

TrainResult resume(const std::string& run_dir, const RunOptions& options) {
  const std::string cfg = run_dir + "/config.json";
  ST_CHECK(fs::exists(cfg), run_dir, ": not a run folder (no config.json)");
  ST_CHECK(fs::exists(run_dir + "/checkpoint.safetensors"), run_dir,
           ": no checkpoint.safetensors to resume from");
  Config config = on_device_of(load_config(cfg), options);
  return run(config, options, run_dir, /*resuming=*/true);
}

}  // namespace st::experiment
