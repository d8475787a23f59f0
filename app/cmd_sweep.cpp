// app/cmd_sweep.cpp — `sparsetrain sweep`: train a grid of runs and plot the curve.
#include <memory>
#include <tuple>

#include "app/cli.h"
#include "experiment/sweep.h"

namespace st::app {

namespace {

struct SweepCommandOptions {
  std::string path;
  std::string shard;
  experiment::SweepOptions sweep;
};

}  // namespace

Command add_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepCommandOptions>();
  auto* cmd = app.add_subcommand("sweep", "Train a grid of runs (method x sparsity) and plot the curve");
  cmd->add_option("sweep", o->path, "Sweep file (JSON), e.g. configs/sweep_lenet300_mnist.json")->required();
  auto* dry_run = cmd->add_flag("--dry-run", o->sweep.dry_run, "List the points and their configs; train nothing");
  cmd->add_option("--only", o->sweep.only, "Train only this method (repeatable or a,b; \"dense\" = the baseline)")
      ->allow_extra_args(false)
      ->delimiter(',');
  cmd->add_option("--points", o->sweep.max_points, "Train at most N points now (rerun to continue)")
      ->check(kPositive)
      ->excludes(dry_run);  // a dry run lists every point: a limit on training would be ignored
  cmd->add_option("--shard", o->shard,
                  "I/N: take only the points whose index is I modulo N (0 <= I < N), for N processes "
                  "sharing the sweep (a job array, GNU parallel)");
  cmd->add_flag("--quiet,-q", o->sweep.quiet, "No per-epoch output");
  return {cmd, [o] {
            if (!o->shard.empty())
              std::tie(o->sweep.shard_index, o->sweep.shard_count) = experiment::parse_shard(o->shard);
            experiment::run_sweep(experiment::load_sweep(o->path), o->sweep);
            return 0;
          }};
}

}  // namespace st::app
