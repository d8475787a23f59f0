// app/main.cpp — the `sparsetrain` command line: train | sweep | eval | info | export | bench | device.
// Every user mistake ends as "error: <what, naming the file/key/value>" and exit code 1.
#include <omp.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <new>

#include <CLI/CLI.hpp>

#include "app/openmp_defaults.h"
#include "bench/bench.h"
#include "core/ops.h"
#include "cuda/runtime.h"
#include "data/dataset.h"
#include "experiment/checkpoint.h"
#include "experiment/config.h"
#include "experiment/export.h"
#include "experiment/json_errors.h"
#include "experiment/memory_estimate.h"
#include "experiment/safetensors.h"
#include "experiment/setup.h"
#include "experiment/sweep.h"
#include "experiment/trainer.h"
#include "models/builder.h"
#include "pruning/config.h"

namespace fs = std::filesystem;
using namespace st;

namespace {

// Refuses, before any work, an output path that cannot be written: a benchmark must not run for
// minutes and then fail at its last step. Creates nothing.
void check_writable(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  ST_CHECK(!fs::is_directory(p, ec), flag, " ", path, ": is a directory; expected a file to write");
  if (fs::exists(p, ec)) {
    ST_CHECK(::access(path.c_str(), W_OK) == 0, flag, " ", path, ": the file is not writable");
    return;
  }
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  ST_CHECK(fs::is_directory(parent, ec), flag, " ", path, ": the folder ", parent.string(), " does not exist");
  ST_CHECK(::access(parent.c_str(), W_OK) == 0, flag, " ", path, ": the folder ", parent.string(),
           " is not writable");
}

// "1x28x28 samples, 10 classes": a dataset's sample shape as messages show it.
std::string shape_text(const data::Dataset& d) {
  return std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" + std::to_string(d.width) +
         " samples, " + std::to_string(d.num_classes) + " classes";
}

int cmd_eval(const std::string& target, const std::string& dataset, const std::string& dir,
             const std::string& split, int batch, int threads, const std::string& device) {
  const std::string ckpt = experiment::checkpoint_file(target, "eval");
  experiment::CheckpointInfo info = experiment::read_checkpoint_info(ckpt);
  const experiment::Config run_config = experiment::parse_config(info.config, ckpt + " (config)");
  nlohmann::json raw = experiment::to_json(run_config);
  if (!dataset.empty() && dataset != experiment::to_string(run_config.data.dataset)) {
    // Another dataset brings its own folder, hold-out and (synthetic) shape: of the run's data
    // settings only normalization carries over.
    raw["data"] = {{"dataset", dataset}, {"normalize", run_config.data.normalize}};
  }
  if (!dir.empty()) raw["data"]["dir"] = dir;
  if (threads >= 0) raw["threads"] = threads;
  if (!device.empty()) raw["device"] = device;
  const experiment::Config config = experiment::parse_config(raw, "eval options");
  ST_CHECK(dir.empty() || config.data.dataset != experiment::Dataset::Synthetic,
           "--data-dir is not used with the synthetic dataset (it is generated, not read)");
  experiment::check_memory(config);
  experiment::apply_process_settings(config);
  data::DatasetSplits data = data::load_dataset(experiment::data_options(config));
  const data::Dataset* set = split == "train"        ? &data.train
                             : split == "validation" ? &data.validation
                                                     : &data.test;
  ST_CHECK(set->size > 0, "--split ", split, ": that split is empty for this config");
  if (config.data.dataset != run_config.data.dataset) {
    // The model is built as trained; the other dataset's samples must fit it.
    const data::Dataset trained = experiment::sample_shape(run_config);
    ST_CHECK(trained.channels == set->channels && trained.height == set->height &&
                 trained.width == set->width && trained.num_classes == set->num_classes,
             "--dataset ", dataset, ": its ", shape_text(*set), " do not fit the model, trained on ",
             experiment::to_string(run_config.data.dataset), " (", shape_text(trained), ")");
  }
  auto model = models::build_model(experiment::model_spec(config),
                                   {set->channels, set->height, set->width}, set->num_classes,
                                   config.seed);
  experiment::load_checkpoint(ckpt, *model, nullptr);
  model->to(experiment::core_device(config));
  experiment::EvalResult r = experiment::evaluate(*model, *set, batch);
  std::printf("%s on %s/%s (%lld samples): accuracy %.2f%%  loss %.4f  (epoch %d)\n", ckpt.c_str(),
              experiment::to_string(config.data.dataset), split.c_str(),
              static_cast<long long>(r.samples), 100 * r.accuracy, r.loss, info.epoch);
  return 0;
}

// What the CUDA backend sees: whether `"device": "cuda"` can run here, and on what.
int cmd_device() {
  const cuda::DeviceInfo info = cuda::device_info();
  std::printf("cuda backend: %s\n", cuda::emulated() ? "CPU emulator (built without nvcc)" : "nvcc-built");
  if (!info.available) {
    std::printf("device: none (%s)\n", info.reason.c_str());
    return 0;
  }
  if (info.emulated)
    std::printf("device: CPU emulator (SPARSETRAIN_CUDA_EMULATION=1; slow, for testing)\n");
  else
    std::printf("device: %s, compute capability %d.%d, %.1f GiB\n", info.name.c_str(), info.cc_major,
                info.cc_minor, info.total_memory / double(1 << 30));
  return 0;
}

int cmd_info(const std::string& target) {
  const std::string ckpt = experiment::checkpoint_file(target, "info");
  experiment::SafetensorsFile f = experiment::read_safetensors(ckpt);
  std::printf("%s\n", ckpt.c_str());
  for (const auto& [k, v] : f.metadata)
    if (k != "config") std::printf("  %-16s %s\n", k.c_str(), v.c_str());
  if (f.metadata.count("config")) {
    experiment::Config c = experiment::parse_config(experiment::parse_user_json(f.metadata.at("config"), ckpt + " (config)"),
                                                    ckpt + " (config)");
    std::printf("  %-16s %s\n", "config", experiment::describe(c).c_str());
  }
  std::printf("\n  %-40s %-5s %-18s %12s\n", "tensor", "dtype", "shape", "bytes");
  size_t total = 0;
  for (const auto& t : f.tensors) {
    std::printf("  %-40s %-5s %-18s %12zu\n", t.name.c_str(), t.dtype.c_str(),
                shape_str(t.shape).c_str(), t.bytes.size());
    total += t.bytes.size();
  }
  std::printf("  %zu tensors, %zu bytes\n", f.tensors.size(), total);
  // Per layer: the weight's dense size against its CSR size (stored, for layers saved in CSR
  // mode; otherwise what CSR over its mask would take).
  bool header = false;
  for (const auto& t : f.tensors) {
    if (t.dtype != "F32" || t.shape.size() < 2) continue;
    const auto* row_ptr = f.find(t.name + ".csr.row_ptr");
    const auto* col_idx = f.find(t.name + ".csr.col_idx");
    const auto* values = f.find(t.name + ".csr.values");
    const auto* mask = f.find("mask." + t.name);
    int64_t sparse_bytes = -1, nnz = 0;
    const int64_t rows = t.shape[0];
    if (row_ptr && col_idx && values) {
      sparse_bytes = static_cast<int64_t>(row_ptr->bytes.size() + col_idx->bytes.size() + values->bytes.size());
      nnz = static_cast<int64_t>(values->bytes.size() / 4);
    } else if (mask) {
      for (uint8_t b : mask->bytes) nnz += b != 0;
      sparse_bytes = 8 * nnz + 4 * (rows + 1);
    }
    if (!header) {
      std::printf("\n  %-28s %-6s %12s %12s %10s %8s\n", "weight", "mode", "dense bytes", "csr bytes", "nonzeros", "ratio");
      header = true;
    }
    const int64_t dense_bytes = static_cast<int64_t>(t.bytes.size());
    if (sparse_bytes < 0)
      std::printf("  %-28s %-6s %12lld %12s %10s %8s\n", t.name.c_str(), "dense", static_cast<long long>(dense_bytes), "-", "-", "-");
    else
      std::printf("  %-28s %-6s %12lld %12lld %10lld %7.2fx\n", t.name.c_str(), row_ptr ? "csr" : "dense",
                  static_cast<long long>(dense_bytes), static_cast<long long>(sparse_bytes),
                  static_cast<long long>(nnz), double(dense_bytes) / std::max<int64_t>(sparse_bytes, 1));
  }
  return 0;
}

// CLI11 reads a misspelled command as a stray argument ("The following arguments were not
// expected: trian"): name it as a command and suggest the closest one. "" when the commands are known.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* cur = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto subs = cur->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty() || arg.empty() || arg[0] == '-') return "";
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : subs) {
      names.push_back(sub->get_name());
      if (sub->get_name() == arg) next = sub;
    }
    if (!next) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      return "unknown command \"" + st::excerpt(arg) + "\"" + experiment::did_you_mean(arg, names) +
             " (commands: " + list + ")";
    }
    cur = next;
  }
  return "";
}

// "bench train": a subcommand as typed.
std::string command_name(const CLI::App& app, const CLI::App* cmd) {
  std::string name;
  for (; cmd && cmd != &app; cmd = cmd->get_parent()) name = cmd->get_name() + (name.empty() ? "" : " " + name);
  return name.empty() ? "sparsetrain" : name;
}

// Refuses a --stop-after that a run of `c` never reaches: it would stop nothing.
void check_stop_after(int stop_after, const experiment::Config& c) {
  if (stop_after <= 0) return;
  const int finetune = c.pruning.is_null() ? 0 : pruning::parse_pruning_config(c.pruning, c.train.epochs).finetune.epochs;
  const int total = c.train.epochs + finetune;
  ST_CHECK(stop_after < total, "--stop-after ", stop_after, ": the run has ", total, " epochs (train.epochs",
           finetune ? " + pruning.finetune.epochs" : "", "), so it would stop nothing");
}

// For CLI11's "The following arguments were not expected: --sparsityy": the first unknown option of
// the command being parsed, named with that command and the closest known option; "" when none.
std::string unknown_option(const CLI::App& app, int argc, char** argv) {
  const CLI::App* cur = &app;
  for (auto subs = cur->get_subcommands(); !subs.empty(); subs = cur->get_subcommands()) cur = subs.front();
  std::vector<std::string> names;
  for (const CLI::Option* o : cur->get_options())
    for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(names.begin(), names.end(), name) == names.end())
      return "unknown option \"" + st::excerpt(name) + "\" for \"" +
             command_name(app, cur) + "\"" +
             experiment::did_you_mean(name, names) + " (see --help)";
  }
  return "";
}

}  // namespace

// CLI11's PositiveNumber prints its bound as DBL_MAX in full (309 digits); every integer flag is an
// int, so its range is written as one.
const CLI::Range kPositive(1, INT_MAX, "POSITIVE");
const CLI::Range kNonNegative(0, INT_MAX, "NONNEGATIVE");

int main(int argc, char** argv) {
  app::apply_openmp_wait_default(argv);  // may restart the process: before anything else
  CLI::App app{"sparsetrain — a C++ trainer with built-in pruning and sparse training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sparsetrain 0.1");

  // train
  auto* train = app.add_subcommand("train", "Train a model from a JSON experiment config");
  std::string config_path;
  std::vector<std::string> overrides;
  experiment::RunOptions run;
  train->add_option("config", config_path, "Experiment config (JSON), e.g. configs/default.json");
  train->add_option("--set", overrides, "Override a config key: --set optimizer.lr=0.05 (repeatable)");
  auto* run_dir = train->add_option("--run-dir", run.run_dir, "Run folder (default: <output.dir>/<name>-<time>)");
  auto* init_from = train->add_option("--init-from", run.init_from,
                                      "Start from the weights of this checkpoint (or run folder)");
  // A resumed run keeps its folder and its weights: --run-dir and --init-from would be ignored.
  train->add_option("--resume", run.resume_dir, "Continue the interrupted run in this folder")
      ->excludes(run_dir)
      ->excludes(init_from);
  train->add_option("--stop-after", run.stop_after_epochs,
                    "Stop after this many epochs in total (resumable later)")
      ->check(kPositive);
  train->add_flag("--quiet,-q", run.quiet, "No per-epoch output");
  train->add_option("--device", run.device, "cpu | cuda: run there instead of on the config's device "
                                            "(also when resuming)")
      ->check(CLI::IsMember({"cpu", "cuda"}));

  // eval
  auto* eval = app.add_subcommand("eval", "Score a checkpoint (or run folder) on a dataset split");
  std::string eval_target, eval_dataset, eval_dir, eval_split = "test";
  int eval_batch = 1000, eval_threads = -1;
  eval->add_option("checkpoint", eval_target, "checkpoint.safetensors or a run folder")->required();
  eval->add_option("--dataset", eval_dataset, "mnist | fashion_mnist | synthetic (default: the run's)")
      ->check(CLI::IsMember({"mnist", "fashion_mnist", "synthetic"}));
  eval->add_option("--data-dir", eval_dir, "Folder with the IDX files");
  eval->add_option("--split", eval_split, "test | validation | train")
      ->check(CLI::IsMember({"test", "validation", "train"}));
  eval->add_option("--batch", eval_batch, "Batch size")->check(kPositive);
  eval->add_option("--threads", eval_threads, "OpenMP threads (0 = all cores)")
      ->check(kNonNegative);
  std::string eval_device;
  eval->add_option("--device", eval_device, "cpu | cuda (default: the run's)")
      ->check(CLI::IsMember({"cpu", "cuda"}));

  // device
  auto* device = app.add_subcommand("device", "Show whether the CUDA backend has a device here");

  // config-reference
  auto* config_ref = app.add_subcommand("config-reference", "Print every config key (docs/config.md) from the key table");

  // info
  auto* info = app.add_subcommand("info", "List a checkpoint's tensors and metadata");
  std::string info_target;
  info->add_option("checkpoint", info_target, "checkpoint.safetensors or a run folder")->required();

  // sweep
  auto* sweep = app.add_subcommand("sweep", "Train a grid of runs (method x sparsity) and plot the curve");
  std::string sweep_path;
  experiment::SweepOptions sweep_opts;
  sweep->add_option("sweep", sweep_path, "Sweep file (JSON), e.g. configs/sweep_lenet300_mnist.json")->required();
  auto* dry_run = sweep->add_flag("--dry-run", sweep_opts.dry_run, "List the points and their configs; train nothing");
  sweep->add_option("--only", sweep_opts.only, "Train only this method (repeatable or a,b; \"dense\" = the baseline)")
      ->allow_extra_args(false)
      ->delimiter(',');
  sweep->add_option("--points", sweep_opts.max_points, "Train at most N points now (rerun to continue)")
      ->check(kPositive)
      ->excludes(dry_run);  // a dry run lists every point: a limit on training would be ignored
  sweep->add_flag("--quiet,-q", sweep_opts.quiet, "No per-epoch output");

  // bench
  auto* bench = app.add_subcommand("bench", "Benchmarks (medians after warm-up)");
  bench->require_subcommand(1);
  auto* bench_train = bench->add_subcommand("train", "Training throughput (samples/s) per model");
  bench::TrainBenchOptions bt;
  std::string bt_model = "all";
  bench_train->add_option("--model", bt_model, "lenet300 | lenet5 | simplecnn | all")
      ->check(CLI::IsMember({"lenet300", "lenet5", "simplecnn", "all"}));
  bench_train->add_option("--batch", bt.batch, "Batch size")->check(kPositive);
  bench_train->add_option("--steps", bt.steps, "Timed steps per repeat")->check(kPositive);
  bench_train->add_option("--repeats", bt.repeats, "Repeats (median reported)")->check(kPositive);
  bench_train->add_option("--warmup", bt.warmup, "Untimed warm-up steps")->check(kNonNegative);
  bench_train->add_option("--backend", bt.backend, "onednn | native")
      ->check(CLI::IsMember({"onednn", "native"}));
  bench_train->add_option("--threads", bt.threads, "OpenMP threads")->check(kPositive);
  bench_train->add_option("--json", bt.json_path, "Also write the results as JSON here");
  auto* bt_sparsity = bench_train->add_option("--sparsity", bt.sparsities,
                          "Sparsities (e.g. 0.9,0.95,0.98): dense-masked vs CSR throughput side by side")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1.0));
  bench_train->add_option("--mode", bt.modes,
                          "Execution modes with --sparsity: dense,csr (with --device cuda also "
                          "cusparse: CSR through cuSPARSE)")
      ->needs(bt_sparsity)
      ->delimiter(',')
      ->check(CLI::IsMember({"dense", "csr", "cusparse"}));
  bench_train->add_option("--device", bt.device,
                          "cpu | cuda: train on a real NVIDIA GPU (model, optimizer state and batches "
                          "on the device); fails without one, and refuses the CUDA emulator")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  auto* bench_kernels = bench->add_subcommand(
      "kernels", "CSR SpMM / SpMMᵀ / SDDMM vs dense (sgemm, oneDNN; on --device cuda cuBLAS) over "
                 "shapes × sparsities");
  bench::KernelBenchOptions bk;
  bench_kernels->add_option("--threads", bk.threads, "OpenMP threads")->check(kPositive);
  bench_kernels->add_option("--shapes", bk.shapes,
                            "Only these shapes, OUTxINxBATCH (e.g. 1024x1024x128; repeatable or comma-separated)")
      ->delimiter(',');
  bench_kernels->add_flag("--quick", bk.quick, "Fewer sparsities and shorter timing (smoke test)");
  bench_kernels->add_option("--csv", bk.csv_path, "Write all rows as CSV here");
  bench_kernels->add_option("--md", bk.md_path, "Also write the markdown tables here");
  bench_kernels->add_option("--svg", bk.svg_path, "Write the SpMM speedup plot (SVG) here");
  bench_kernels->add_option("--device", bk.devices,
                            "cpu | cuda | cpu,cuda (default cpu). cuda: our CUDA kernels, cuda::sgemm "
                            "and cuSPARSE on a real NVIDIA GPU, each checked against the CPU result, "
                            "then timed with CUDA events; their speedups are over cuBLAS SGEMM. "
                            "Fails without a GPU, and refuses the CUDA emulator")
      ->delimiter(',')
      ->check(CLI::IsMember({"cpu", "cuda"}));

  // export
  auto* exp = app.add_subcommand("export", "Write a smaller dense model from a neuron/filter-pruned checkpoint");
  std::string export_target, export_out;
  bool export_compact = false;
  exp->add_option("checkpoint", export_target, "checkpoint.safetensors or a run folder")->required();
  exp->add_flag("--compact", export_compact, "Drop pruned neurons/filters (and the inputs they fed)");
  exp->add_option("--out", export_out, "Output file: new, or an earlier export; never the input or a run's own files")->required();

  if (const std::string unknown = unknown_command(app, argc, argv); !unknown.empty()) {
    std::fprintf(stderr, "error: %s\n", unknown.c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // An unknown option is named whatever CLI11 stumbled on first ("The following arguments were
    // not expected", or "A subcommand is required" for `sparsetrain --bogus`).
    const std::string unknown = e.get_exit_code() != 0 ? unknown_option(app, argc, argv) : "";
    if (!unknown.empty()) {
      std::fprintf(stderr, "error: %s\n", unknown.c_str());
      return 1;
    }
    // --help and --version exit 0; every refused flag exits 1, like every other user mistake.
    return app.exit(e) == 0 ? 0 : 1;
  }

  try {
    if (train->parsed()) {
      if (!run.resume_dir.empty()) {
        ST_CHECK(config_path.empty() && overrides.empty(),
                 "--resume continues a run with its saved config; do not pass a config or --set");
        experiment::resume(run.resume_dir, run);
      } else {
        ST_CHECK(!config_path.empty(), "train: give a config file (e.g. configs/default.json) or --resume DIR");
        experiment::Config config = experiment::load_config(config_path, overrides);
        check_stop_after(run.stop_after_epochs, config);
        if (!run.init_from.empty()) run.init_from = experiment::checkpoint_file(run.init_from, "--init-from");
        experiment::train(config, run);
      }
    } else if (sweep->parsed()) {
      experiment::run_sweep(experiment::load_sweep(sweep_path), sweep_opts);
    } else if (eval->parsed()) {
      return cmd_eval(eval_target, eval_dataset, eval_dir, eval_split, eval_batch, eval_threads,
                      eval_device);
    } else if (device->parsed()) {
      return cmd_device();
    } else if (exp->parsed()) {
      ST_CHECK(export_compact, "export: only --compact is supported (write a compact dense model)");
      check_writable(export_out, "--out");
      const auto r = experiment::export_compact(export_target, export_out);
      std::printf("%s: %lld -> %lld parameters, %lld -> %lld MACs/sample\n", export_out.c_str(),
                  static_cast<long long>(r.params_before), static_cast<long long>(r.params_after),
                  static_cast<long long>(r.macs_before), static_cast<long long>(r.macs_after));
    } else if (info->parsed()) {
      return cmd_info(info_target);
    } else if (config_ref->parsed()) {
      std::fputs(experiment::config_reference().c_str(), stdout);
    } else if (bench_train->parsed()) {
      if (bt_model != "all") bt.models = {bt_model};
      check_writable(bt.json_path, "--json");
      return bench::bench_train(bt);
    } else if (bench_kernels->parsed()) {
      check_writable(bk.csv_path, "--csv");
      check_writable(bk.md_path, "--md");
      check_writable(bk.svg_path, "--svg");
      return bench::bench_kernels(bk);
    }
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory: the model, the batch or the dataset does not fit in "
                         "this machine's memory (make model sizes, train.batch_size or the dataset "
                         "smaller)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
