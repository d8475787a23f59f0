// app/cmd_train.cpp — `sparsetrain train`: a new run from a config, or --resume of an interrupted one.
#include <memory>

#include "app/cli.h"
#include "experiment/config.h"
#include "experiment/run_folder.h"
#include "experiment/trainer.h"

namespace st::app {

namespace {

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string device;  // --device, as the config spells it; "" = the config's
  experiment::RunOptions run;
};

// Refuses a --stop-after that a run of `c` never reaches: it would stop nothing.
void check_stop_after(int stop_after, const experiment::Config& c) {
  if (stop_after <= 0) return;
  const int finetune = c.pruning ? c.pruning->finetune.epochs : 0;
  const int total = c.train.epochs + finetune;
  ST_CHECK(stop_after < total, "--stop-after ", stop_after, ": the run has ", total, " epochs (train.epochs",
           finetune ? " + pruning.finetune.epochs" : "", "), so it would stop nothing");
}

int run_train(TrainOptions o) {
  if (!o.device.empty()) o.run.device = experiment::choice_of<Device>(o.device, "--device");
  if (!o.run.resume_dir.empty()) {
    ST_CHECK(o.config_path.empty() && o.overrides.empty(),
             "--resume continues a run with its saved config; do not pass a config or --set");
    experiment::resume(o.run.resume_dir, o.run);
    return 0;
  }
  ST_CHECK(!o.config_path.empty(), "train: give a config file (e.g. configs/default.json) or --resume DIR");
  const experiment::Config config = experiment::load_config(o.config_path, o.overrides);
  check_stop_after(o.run.stop_after_epochs, config);
  if (!o.run.init_from.empty()) o.run.init_from = experiment::checkpoint_file(o.run.init_from, "--init-from");
  experiment::train(config, o.run);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Train a model from a JSON experiment config");
  cmd->add_option("config", o->config_path, "Experiment config (JSON), e.g. configs/default.json");
  cmd->add_option("--set", o->overrides, "Override a config key: --set optimizer.lr=0.05 (repeatable)");
  auto* run_dir = cmd->add_option("--run-dir", o->run.run_dir, "Run folder (default: <output.dir>/<name>-<time>)");
  auto* init_from = cmd->add_option("--init-from", o->run.init_from,
                                    "Start from the weights of this checkpoint (or run folder)");
  // A resumed run keeps its folder and its weights: --run-dir and --init-from would be ignored.
  cmd->add_option("--resume", o->run.resume_dir, "Continue the interrupted run in this folder")
      ->excludes(run_dir)
      ->excludes(init_from);
  cmd->add_option("--stop-after", o->run.stop_after_epochs,
                  "Stop after this many epochs in total (resumable later)")
      ->check(kPositive);
  cmd->add_flag("--quiet,-q", o->run.quiet, "No per-epoch output");
  cmd->add_option("--device", o->device, "cpu | cuda: run there instead of on the config's device "
                                         "(also when resuming)")
      ->check(CLI::IsMember(experiment::choice_names<Device>()));
  return {cmd, [o] { return run_train(*o); }};
}

}  // namespace st::app
