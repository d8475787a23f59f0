// app/cmd_bench.cpp — `sparsetrain bench train | kernels | width`: the benchmarks of bench/ (st_bench).
#include <memory>

#include "app/cli.h"
#include "bench/bench.h"
#include "experiment/config.h"

namespace st::app {

namespace {

struct TrainBenchCommandOptions {
  std::string model = "all";
  std::string backend = "onednn", device = "cpu";  // as the config spells them
  bench::TrainBenchOptions bench;
};

Command add_bench_train(CLI::App& bench_cmd) {
  auto o = std::make_shared<TrainBenchCommandOptions>();
  bench::TrainBenchOptions& bt = o->bench;
  auto* cmd = bench_cmd.add_subcommand("train", "Training throughput (samples/s) per model");
  cmd->add_option("--model", o->model, "lenet300 | lenet5 | simplecnn | all")
      ->check(CLI::IsMember({"lenet300", "lenet5", "simplecnn", "all"}));
  cmd->add_option("--batch", bt.batch, "Batch size")->check(kPositive);
  cmd->add_option("--steps", bt.steps,
                  "Timed steps per repeat (over ~10 000 steps in all, the model memorizes the 64 "
                  "random batches, its gradients become subnormal, and CPUs that slow down on "
                  "subnormal floats report 2-2.5x less)")
      ->check(kPositive);
  cmd->add_option("--repeats", bt.repeats, "Repeats (median reported)")->check(kPositive);
  cmd->add_option("--warmup", bt.warmup, "Untimed warm-up steps")->check(kNonNegative);
  cmd->add_option("--backend", o->backend, "onednn | native")
      ->check(CLI::IsMember(experiment::choice_names<DenseBackend>()));
  cmd->add_option("--threads", bt.threads, "OpenMP threads")->check(kPositive);
  cmd->add_option("--json", bt.json_path, "Also write the results as JSON here");
  auto* sparsity = cmd->add_option("--sparsity", bt.sparsities,
                                   "Sparsities (e.g. 0.9,0.95,0.98): dense-masked vs CSR throughput side by side")
                       ->delimiter(',')
                       ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--mode", bt.modes,
                  "Execution modes with --sparsity: dense,csr (with --device cuda also "
                  "cusparse: CSR through cuSPARSE)")
      ->needs(sparsity)
      ->delimiter(',')
      ->check(CLI::IsMember({"dense", "csr", "cusparse"}));
  cmd->add_option("--device", o->device,
                  "cpu | cuda: train on a real NVIDIA GPU (model, optimizer state and batches "
                  "on the device); fails without one, and refuses the CUDA emulator")
      ->check(CLI::IsMember(experiment::choice_names<Device>()));
  return {cmd, [o] {
            if (o->model != "all") o->bench.models = {o->model};
            o->bench.backend = experiment::choice_of<DenseBackend>(o->backend, "--backend");
            o->bench.device = experiment::choice_of<Device>(o->device, "--device");
            check_writable(o->bench.json_path, "--json");
            return bench::bench_train(o->bench);
          }};
}

Command add_bench_kernels(CLI::App& bench_cmd) {
  auto bk = std::make_shared<bench::KernelBenchOptions>();
  auto* cmd = bench_cmd.add_subcommand(
      "kernels", "CSR SpMM / SpMMᵀ / SDDMM vs dense (sgemm, oneDNN; on --device cuda cuBLAS) over "
                 "shapes × sparsities");
  cmd->add_option("--threads", bk->threads, "OpenMP threads")->check(kPositive);
  cmd->add_option("--shapes", bk->shapes,
                  "Only these shapes, OUTxINxBATCH (e.g. 1024x1024x128; repeatable or comma-separated)")
      ->delimiter(',');
  cmd->add_flag("--quick", bk->quick, "Fewer sparsities and shorter timing (smoke test)");
  cmd->add_option("--csv", bk->csv_path, "Write all rows as CSV here");
  cmd->add_option("--md", bk->md_path, "Also write the markdown tables here");
  cmd->add_option("--svg", bk->svg_path, "Write the SpMM speedup plot (SVG) here");
  cmd->add_option("--device", bk->devices,
                  "cpu | cuda | cpu,cuda (default cpu). cuda: our CUDA kernels, cuda::sgemm "
                  "and cuSPARSE on a real NVIDIA GPU, each checked against the CPU result, "
                  "then timed with CUDA events; their speedups are over cuBLAS SGEMM. "
                  "Fails without a GPU, and refuses the CUDA emulator")
      ->delimiter(',')
      ->check(CLI::IsMember({"cpu", "cuda"}));
  return {cmd, [bk] {
            check_writable(bk->csv_path, "--csv");
            check_writable(bk->md_path, "--md");
            check_writable(bk->svg_path, "--svg");
            return bench::bench_kernels(*bk);
          }};
}

}  // namespace

Command add_bench_width(CLI::App& bench_cmd) {
  auto bw = std::make_shared<bench::WidthBenchOptions>();
  auto* cmd = bench_cmd.add_subcommand(
      "width", "Sparse MLP 784-h-h-10 training step at a fixed number of nonzeros over widths h");
  cmd->add_option("--widths", bw->widths, "Hidden widths h (e.g. 2000,10000,100000,1000000)")
      ->delimiter(',')
      ->check(CLI::Range(10, 2000000));
  cmd->add_option("--nonzeros", bw->nonzeros, "Nonzeros in the whole model")->check(CLI::Range(int64_t{100}, int64_t{1} << 31));
  cmd->add_option("--batch", bw->batch, "Batch size")->check(kPositive);
  cmd->add_option("--steps", bw->steps, "Timed steps per repeat")->check(kPositive);
  cmd->add_option("--repeats", bw->repeats, "Repeats (median reported)")->check(kPositive);
  cmd->add_option("--warmup", bw->warmup, "Untimed warm-up steps")->check(kNonNegative);
  cmd->add_option("--threads", bw->threads, "OpenMP threads")->check(kPositive);
  return {cmd, [bw] { return bench::bench_width(*bw); }};
}

Command add_bench_distributed(CLI::App& bench_cmd) {
  auto bd = std::make_shared<bench::DistributedBenchOptions>();
  auto* cmd = bench_cmd.add_subcommand(
      "distributed", "Data-parallel training per sparsity on the launched ranks (mpirun -np N ...): "
                     "samples/s, exchange time and bytes per step, and a multi-node scaling model");
  cmd->add_option("--model", bd->model, "lenet300 | lenet5 | simplecnn | mlp (with --hidden)")
      ->check(CLI::IsMember({"lenet300", "lenet5", "simplecnn", "mlp"}));
  cmd->add_option("--hidden", bd->hidden, "mlp: hidden widths (e.g. 10000,10000)")->delimiter(',')->check(kPositive);
  cmd->add_option("--sparsity", bd->sparsities, "Sparsities (0 = dense), e.g. 0,0.9,0.95,0.99")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 0.999));
  cmd->add_option("--batch", bd->batch, "Global batch size")->check(kPositive);
  cmd->add_option("--steps", bd->steps, "Steps per epoch (two epochs, the second timed)")->check(kPositive);
  cmd->add_option("--threads", bd->threads, "OpenMP threads per rank")->check(kPositive);
  cmd->add_option("--micro-batches", bd->micro_batches, "Parts per batch (0 = one per rank)")->check(kNonNegative);
  cmd->add_option("--link-gbps", bd->link_gbps, "Scaling model: link speed in Gbit/s")->check(CLI::PositiveNumber);
  cmd->add_option("--latency-us", bd->latency_us, "Scaling model: seconds per message, in µs")->check(CLI::NonNegativeNumber);
  cmd->add_option("--nodes", bd->nodes, "Scaling model: node counts")->delimiter(',')->check(CLI::Range(2, 1 << 20));
  return {cmd, [bd] {
            ST_CHECK(bd->model != "mlp" || !bd->hidden.empty(), "bench distributed --model mlp needs --hidden");
            return bench::bench_distributed(*bd);
          }};
}

std::vector<Command> add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Benchmarks (medians after warm-up)");
  cmd->require_subcommand(1);
  return {add_bench_train(*cmd), add_bench_kernels(*cmd), add_bench_width(*cmd), add_bench_distributed(*cmd)};
}

}  // namespace st::app
