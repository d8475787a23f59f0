// app/cmd_sweep.cpp — `sparsetrain sweep`: train a grid of runs and plot the curve.
#include <cstdio>
#include <memory>
#include <tuple>

#include "app/cli.h"
#include "distributed/communicator.h"
#include "experiment/sweep.h"

namespace st::app {

namespace {

struct SweepCommandOptions {
  std::string path;
  std::string shard;
  experiment::SweepOptions sweep;
};

// Under `mpirun -np N` every rank is one more shard: rank r of N takes the points I*N + r modulo
// M*N of --shard I/M (of all points without --shard), trains each alone with its own threads, and
// rank 0 writes the curve once every rank is done.
int run_sweep_command(SweepCommandOptions& o) {
  if (!o.shard.empty()) std::tie(o.sweep.shard_index, o.sweep.shard_count) = experiment::parse_shard(o.shard);
  const experiment::SweepConfig sweep = experiment::load_sweep(o.path);
  distributed::Communicator& comm = distributed::world();
  if (comm.size() == 1 || o.sweep.dry_run) {
    if (comm.rank() == 0) experiment::run_sweep(sweep, o.sweep);
    return 0;
  }
  o.sweep.shard_index = o.sweep.shard_index * comm.size() + comm.rank();
  o.sweep.shard_count *= comm.size();
  o.sweep.quiet = true;  // N ranks' epoch lines would interleave; each point's result is logged
  const std::string tag = "[rank " + std::to_string(comm.rank()) + "] ";
  o.sweep.log = [tag](const std::string& line) {
    std::printf("%s%s\n", tag.c_str(), line.c_str());
    std::fflush(stdout);
  };
  experiment::run_sweep(sweep, o.sweep);
  comm.barrier();
  if (comm.rank() == 0) experiment::write_sweep_curve(sweep);
  return 0;
}

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
  return {cmd, [o] { return run_sweep_command(*o); }};
}

}  // namespace st::app
