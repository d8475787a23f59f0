#include "experiment/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/lr_schedule.h"
#include "core/ops.h"
#include "core/optim.h"
#include "data/loader.h"
#include "experiment/atomic_file.h"
#include "experiment/checkpoint.h"
#include "experiment/progress.h"
#include "experiment/setup.h"

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

TrainResult run(const Config& config, const RunOptions& options, const std::string& run_dir,
                bool resuming) {
  const auto t_start = Clock::now();
  const int threads = apply_process_settings(config);
  const bool tty = !options.quiet && isatty(fileno(stdout));

  data::DatasetSplits data = data::load_dataset(data_options(config));
  const data::Dataset& train_set = data.train;
  const Shape input{train_set.channels, train_set.height, train_set.width};
  auto model = models::build_model(model_spec(config), input, train_set.num_classes, config.seed);
  std::vector<Parameter*> params = model->parameters();
  Optimizer optimizer(params, optimizer_options(config));
  LrSchedule schedule(static_cast<float>(config.optimizer.lr), config.train.epochs,
                      lr_schedule_options(config));

  const std::string ckpt_path = run_dir + "/checkpoint.safetensors";
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  int start_epoch = 0;
  if (resuming) {
    CheckpointInfo info = load_checkpoint(ckpt_path, *model, &optimizer);
    start_epoch = info.epoch;
    truncate_metrics(metrics_path, start_epoch);
  } else {
    fs::create_directories(run_dir);
    if (!options.init_from.empty()) load_checkpoint(options.init_from, *model, nullptr);
    write_file_atomic(run_dir + "/config.json", to_json(config).dump(2) + "\n");
    write_file_atomic(metrics_path, "");
  }
  if (!options.quiet) {
    std::printf("%s\n%s\nrun folder %s | %d threads | %s data: %lld train, %lld validation, %lld test\n",
                describe(config).c_str(), model->summary().c_str(), run_dir.c_str(), threads,
                to_string(config.data.dataset), static_cast<long long>(train_set.size),
                static_cast<long long>(data.validation.size), static_cast<long long>(data.test.size));
    if (resuming) std::printf("resuming after epoch %d\n", start_epoch);
    std::fflush(stdout);
  }

  const int B = config.train.batch_size;
  data::Loader loader(train_set, B, /*shuffle=*/true, config.seed);
  // Batch buffers are allocated once; a short last batch is a view of their first rows.
  Tensor x_buf({B, input[0], input[1], input[2]});
  Tensor y_buf({B}, DType::i32);
  const int64_t batches = loader.num_batches();

  TrainResult result;
  result.run_dir = run_dir;
  const int last_epoch = options.stop_after_epochs > 0
                             ? std::min(config.train.epochs, options.stop_after_epochs)
                             : config.train.epochs;
  for (int epoch = start_epoch; epoch < last_epoch; ++epoch) {
    const auto t_epoch = Clock::now();
    model->set_training(true);
    loader.start_epoch(epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    float lr = 0;
    Progress progress(tty, epoch + 1, config.train.epochs, batches);
    for (int64_t b = 0; b < batches; ++b) {
      const int n = loader.next(x_buf.f32(), y_buf.i32());
      const Tensor x = x_buf.leading(n), y = y_buf.leading(n);
      Variable logits = model->forward(Variable(x));
      Variable loss = softmax_cross_entropy(logits, y);
      loss_sum += static_cast<double>(loss.value().f32()[0]) * n;
      correct += count_correct(logits.value(), y);
      seen += n;
      optimizer.zero_grad();
      loss.backward();
      lr = schedule.lr_at(epoch + static_cast<double>(b + 1) / batches);
      optimizer.step(lr);
      progress.update(b + 1, loss_sum / seen, static_cast<double>(correct) / seen);
    }
    const double train_seconds = seconds_since(t_epoch);
    EpochMetrics m;
    m.epoch = epoch + 1;
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
    const bool last = epoch + 1 == config.train.epochs;
    const int every = config.output.checkpoint_every;
    if (last || epoch + 1 == last_epoch || (every > 0 && (epoch + 1) % every == 0))
      save_checkpoint(ckpt_path, *model, &optimizer, epoch + 1, config);
    if (!options.quiet) {
      std::printf("epoch %d/%d  loss %.4f  train %.2f%%", m.epoch, config.train.epochs, m.train_loss,
                  100 * m.train_accuracy);
      if (m.val_accuracy >= 0) std::printf("  val %.2f%%", 100 * m.val_accuracy);
      std::printf("  test %.2f%%  lr %.4g  %.1fs  %.0f samples/s\n", 100 * m.test_accuracy, m.lr,
                  m.epoch_seconds, m.samples_per_second);
      std::fflush(stdout);
    }
    result.epochs.push_back(m);
    result.final_test_accuracy = m.test_accuracy;
  }
  result.total_seconds = seconds_since(t_start);
  if (last_epoch == config.train.epochs) {
    // Summary over every epoch of the run, including those before a resume.
    nlohmann::json s;
    std::ifstream in(metrics_path);
    std::string line;
    nlohmann::json last_m;
    double best_val = -1;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      last_m = nlohmann::json::parse(line);
      if (last_m.contains("val_accuracy")) best_val = std::max(best_val, last_m["val_accuracy"].get<double>());
    }
    s["name"] = config.name;
    s["epochs"] = config.train.epochs;
    s["final"] = last_m;
    if (best_val >= 0) s["best_val_accuracy"] = best_val;
    s["test_accuracy"] = last_m.value("test_accuracy", 0.0);
    s["parameters"] = model->num_parameters();
    s["macs_per_sample"] = model->macs_per_sample();
    s["threads"] = threads;
    s["seconds_this_process"] = result.total_seconds;
    write_file_atomic(run_dir + "/summary.json", s.dump(2) + "\n");
    if (!options.quiet)
      std::printf("done: test accuracy %.2f%% | %s\n", 100 * s["test_accuracy"].get<double>(),
                  run_dir.c_str());
  }
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
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int n; (n = loader.next(x_buf.f32(), y_buf.i32())) > 0;) {
    const Tensor x = x_buf.leading(n), y = y_buf.leading(n);
    Variable logits = model.forward(Variable(x));
    loss_sum += static_cast<double>(softmax_cross_entropy(logits, y).value().f32()[0]) * n;
    correct += count_correct(logits.value(), y);
    r.samples += n;
  }
  model.set_training(true);
  if (r.samples) {
    r.loss = loss_sum / r.samples;
    r.accuracy = static_cast<double>(correct) / r.samples;
  }
  return r;
}

TrainResult train(const Config& config, const RunOptions& options) {
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
  Config config = load_config(cfg);
  return run(config, options, run_dir, /*resuming=*/true);
}

}  // namespace st::experiment
