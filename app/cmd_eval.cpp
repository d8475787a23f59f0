// app/cmd_eval.cpp — `sparsetrain eval`: score a checkpoint (or run folder) on a dataset split.
#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "data/dataset.h"
#include "experiment/checkpoint.h"
#include "experiment/config.h"
#include "experiment/memory_estimate.h"
#include "experiment/run_folder.h"
#include "experiment/setup.h"
#include "experiment/trainer.h"
#include "models/builder.h"

namespace st::app {

namespace {

struct EvalOptions {
  std::string target, dataset, dir, split = "test", device;
  int batch = 1000, threads = -1;
};

// "1x28x28 samples, 10 classes": a dataset's sample shape as messages show it.
std::string shape_text(const data::Dataset& d) {
  return std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" + std::to_string(d.width) +
         " samples, " + std::to_string(d.num_classes) + " classes";
}

// The run's config with the command's data, thread and device choices applied.
experiment::Config eval_config(const experiment::Config& run_config, const EvalOptions& o) {
  nlohmann::json raw = experiment::to_json(run_config);
  if (!o.dataset.empty() && experiment::choice_of<data::DatasetKind>(o.dataset, "--dataset") != run_config.data.dataset) {
    // Another dataset brings its own folder, hold-out and (synthetic) shape: of the run's data
    // settings only normalization carries over.
    raw["data"] = {{"dataset", o.dataset}, {"normalize", run_config.data.normalize}};
  }
  if (!o.dir.empty()) raw["data"]["dir"] = o.dir;
  if (o.threads >= 0) raw["threads"] = o.threads;
  if (!o.device.empty()) raw["device"] = o.device;
  const experiment::Config config = experiment::parse_config(raw, "eval options");
  ST_CHECK(o.dir.empty() || config.data.dataset != experiment::DatasetKind::synthetic,
           "--data-dir is not used with the synthetic dataset (it is generated, not read)");
  return config;
}

// The model is built as trained; another dataset's samples must fit it.
void check_fits_model(const experiment::Config& run_config, const experiment::Config& config,
                      const data::Dataset& set, const EvalOptions& o) {
  if (config.data.dataset == run_config.data.dataset) return;
  const data::Dataset trained = experiment::sample_shape(run_config);
  ST_CHECK(trained.channels == set.channels && trained.height == set.height && trained.width == set.width &&
               trained.num_classes == set.num_classes,
           "--dataset ", o.dataset, ": its ", shape_text(set), " do not fit the model, trained on ",
           experiment::to_string(run_config.data.dataset), " (", shape_text(trained), ")");
}

int run_eval(const EvalOptions& o) {
  const std::string ckpt = experiment::checkpoint_file(o.target, "eval");
  experiment::CheckpointInfo info = experiment::read_checkpoint_info(ckpt);
  const experiment::Config run_config = experiment::parse_config(info.config, ckpt + " (config)");
  const experiment::Config config = eval_config(run_config, o);
  experiment::check_memory(config);
  experiment::apply_process_settings(config);
  data::DatasetSplits data = data::load_dataset(experiment::data_options(config));
  const data::Dataset* set = o.split == "train"        ? &data.train
                             : o.split == "validation" ? &data.validation
                                                       : &data.test;
  ST_CHECK(set->size > 0, "--split ", o.split, ": that split is empty for this config");
  check_fits_model(run_config, config, *set, o);
  auto model = models::build_model(experiment::model_spec(config), {set->channels, set->height, set->width},
                                   set->num_classes, config.seed, /*allocate=*/false);
  experiment::load_checkpoint(ckpt, *model, nullptr);
  model->to(config.device);
  experiment::EvalResult r = experiment::evaluate(*model, *set, o.batch);
  std::printf("%s on %s/%s (%lld samples): accuracy %.2f%%  loss %.4f  (epoch %d)\n", ckpt.c_str(),
              experiment::to_string(config.data.dataset), o.split.c_str(), static_cast<long long>(r.samples),
              100 * r.accuracy, r.loss, info.epoch);
  return 0;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Score a checkpoint (or run folder) on a dataset split");
  cmd->add_option("checkpoint", o->target, "checkpoint.safetensors or a run folder")->required();
  cmd->add_option("--dataset", o->dataset, "mnist | fashion_mnist | synthetic (default: the run's)")
      ->check(CLI::IsMember(experiment::choice_names<data::DatasetKind>()));
  cmd->add_option("--data-dir", o->dir, "Folder with the IDX files");
  cmd->add_option("--split", o->split, "test | validation | train")
      ->check(CLI::IsMember({"test", "validation", "train"}));
  cmd->add_option("--batch", o->batch, "Batch size")->check(kPositive);
  cmd->add_option("--threads", o->threads, "OpenMP threads (0 = all cores)")->check(kNonNegative);
  cmd->add_option("--device", o->device, "cpu | cuda (default: the run's)")
      ->check(CLI::IsMember(experiment::choice_names<Device>()));
  return {cmd, [o] { return run_eval(*o); }};
}

}  // namespace st::app
