// bench/bench_distributed.cpp — `sparsetrain bench distributed`: data-parallel training as the trainer
// runs it, per sparsity. Launch it on the ranks to measure (`mpirun -np 2 sparsetrain bench
// distributed`), or alone (one rank, the batch in one part: no exchange, the compute baseline).
// Each sparsity trains one config twice over the same number of steps (the second epoch is timed):
// a model (lenet300, lenet5, simplecnn, or an MLP of --hidden widths) on synthetic 1×28×28 data, with
// static random masks at that sparsity (uniform per layer, sparse from the first step; 0 = dense).
// Per sparsity it prints what the trainer measured: samples/s, compute and exchange time per step,
// the bytes one step sums (the payload: a CSR layer's nonzero gradients only), the bytes all ranks
// sent per step, and the payload against its bound (1.1 × density × the dense weights' bytes, plus
// biases and dense layers). Then a model, not a measurement, of weak scaling over a link of
// --link-gbps: per node the measured compute time per sample × --batch, plus the exchange the
// trainer does (distributed/communicator.h ordered_sum: slices to their owners, gathered back).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "core/check.h"
#include "distributed/communicator.h"
#include "experiment/config.h"
#include "experiment/trainer.h"

namespace st::bench {

namespace fs = std::filesystem;

namespace {

struct Point {
  double sparsity = 0, density = 1;
  double samples_per_second = 0, compute_ms = 0, exchange_ms = 0;
  double payload = 0, wire = 0;  // bytes per step
  int64_t weights = 0;           // prunable weights (dense count)
};

nlohmann::json bench_config(const DistributedBenchOptions& o, double sparsity, const std::string& dir) {
  nlohmann::json c;
  c["name"] = "bench_distributed";
  c["seed"] = 1;
  c["threads"] = o.threads;
  c["data"] = {{"dataset", "synthetic"},
               {"synthetic", {{"train", static_cast<int64_t>(o.steps) * o.batch}, {"test", o.batch}, {"classes", 10},
                              {"channels", 1}, {"height", 28}, {"width", 28}}}};
  c["model"] = {{"arch", o.model}};
  if (o.model == "mlp") c["model"]["hidden"] = o.hidden;
  c["train"] = {{"epochs", 2}, {"batch_size", o.batch}, {"micro_batches", o.micro_batches}, {"eval_batch_size", o.batch}};
  c["optimizer"] = {{"type", "sgd"}, {"lr", 0.01}, {"momentum", 0.9}};
  c["output"] = {{"dir", dir}, {"checkpoint_every", 0}};
  if (sparsity > 0) c["pruning"] = {{"method", "static"}, {"target", sparsity}};
  return c;
}

Point measure(const DistributedBenchOptions& o, double sparsity, const std::string& dir,
              distributed::Communicator& comm) {
  const experiment::Config config = experiment::parse_config(bench_config(o, sparsity, dir), "bench distributed");
  experiment::RunOptions run;
  run.run_dir = dir + "/sparsity-" + std::to_string(sparsity);
  run.quiet = true;
  run.comm = &comm;
  const experiment::TrainResult r = experiment::train(config, run);
  const experiment::EpochMetrics& m = r.epochs.back();
  Point p;
  p.sparsity = sparsity;
  p.samples_per_second = m.samples_per_second;
  const double steps = o.steps;
  p.exchange_ms = 1e3 * m.exchange_seconds / steps;
  p.compute_ms = 1e3 * m.epoch_seconds / steps - p.exchange_ms;
  p.wire = m.exchange_bytes_per_step;
  int64_t kept = 0, not_sent = 0;
  for (const auto& [name, layer] : m.pruning["layers"].items()) {
    p.weights += layer["params"].get<int64_t>();
    kept += layer["nonzeros"].get<int64_t>();
    if (layer.value("mode", "dense") == "csr") not_sent += layer["params"].get<int64_t>() - layer["nonzeros"].get<int64_t>();
  }
  // One rank with the batch in one part sums nothing: the payload is then what it would sum, every
  // parameter but a CSR layer's pruned entries (the trainer's count, checked equal when it measures).
  const int parts = o.micro_batches > 0 ? o.micro_batches : comm.size();
  const double expected = 4.0 * static_cast<double>(m.pruning["params"].get<int64_t>() - not_sent + 2 * parts);
  p.payload = m.exchange_payload_bytes > 0 ? static_cast<double>(m.exchange_payload_bytes) : expected;
  ST_CHECK(m.exchange_payload_bytes == 0 || p.payload == expected, "bench distributed: the trainer summed ",
           p.payload, " bytes per step, expected ", expected);
  p.density = p.weights ? static_cast<double>(kept) / static_cast<double>(p.weights) : 1.0;
  return p;
}

// Seconds for one step's exchange of `payload` bytes over `nodes` nodes as ordered_sum does it with
// one part per node: each node sends every other node that node's slice of its gradient (N - 1
// messages, (N-1)/N of the payload), adds the slices it owns, and the slices are gathered to all
// (a ring: N - 1 steps, (N-1)/N of the payload again).
double model_exchange_seconds(double payload, int nodes, double bytes_per_second, double latency) {
  if (nodes <= 1) return 0;
  const double share = static_cast<double>(nodes - 1) / nodes;
  return 2 * share * payload / bytes_per_second + 2 * (nodes - 1) * latency;
}

}  // namespace

int bench_distributed(const DistributedBenchOptions& o) {
  distributed::Communicator& comm = distributed::world();
  const bool rank0 = comm.rank() == 0;
  const std::string dir = distributed::broadcast_string(
      comm, (fs::temp_directory_path() / ("sparsetrain-bench-distributed-" + std::to_string(::time(nullptr)))).string(), 0);
  std::vector<Point> points;
  for (double s : o.sparsities) points.push_back(measure(o, s, dir, comm));
  comm.barrier();
  if (!rank0) return 0;
  std::error_code ec;
  fs::remove_all(dir, ec);
  const int parts = o.micro_batches > 0 ? o.micro_batches : comm.size();
  std::printf("bench distributed: %s, batch %d in %d part%s, %d rank%s × %d thread%s over %s, %d timed steps\n",
              o.model.c_str(), o.batch, parts, parts == 1 ? "" : "s", comm.size(), comm.size() == 1 ? "" : "s",
              o.threads, o.threads == 1 ? "" : "s", comm.transport().c_str(), o.steps);
  // The dense point (if measured) gives the bytes that are not prunable weights: biases, the
  // per-part loss slots and layers left dense.
  double other = -1;
  for (const Point& p : points)
    if (p.sparsity == 0) other = p.payload - 4.0 * static_cast<double>(p.weights);
  std::printf("| sparsity | density | samples/s | compute ms/step | exchange ms/step | payload B/step | payload / dense | bound B/step | sent B/step (all ranks) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const double dense_payload = points.front().sparsity == 0 ? points.front().payload : 0;
  for (const Point& p : points) {
    const std::string bound = other >= 0 ? std::to_string(static_cast<int64_t>(1.1 * p.density * 4.0 * p.weights + other)) : "-";
    std::printf("| %.3f | %.4f | %.0f | %.3f | %.3f | %.0f | %s | %s | %.0f |\n", p.sparsity, p.density,
                p.samples_per_second, p.compute_ms, p.exchange_ms, p.payload,
                dense_payload > 0 ? (std::to_string(p.payload / dense_payload).substr(0, 6)).c_str() : "-",
                bound.c_str(), p.wire);
  }
  if (other >= 0) {
    bool within = true;
    for (const Point& p : points) within = within && p.payload <= 1.1 * p.density * 4.0 * p.weights + other;
    std::printf("payload within 1.1 × density × dense weight bytes + the rest at every sparsity: %s\n", within ? "yes" : "NO");
  }
  // Weak scaling model: each node trains a batch of --batch per step.
  const double bps = o.link_gbps * 1e9 / 8, latency = o.latency_us * 1e-6;
  std::printf("\nModel (not a measurement): weak scaling, %d samples per node per step, compute per sample as "
              "measured here, exchange over %.0f Gbit/s with %.0f µs per message, no overlap:\n", o.batch, o.link_gbps,
              o.latency_us);
  std::printf("| sparsity | compute ms/step per node |");
  for (int n : o.nodes) std::printf(" %d nodes: exchange ms | samples/s | efficiency |", n);
  std::printf("\n|---:|---:|");
  for (size_t i = 0; i < o.nodes.size(); ++i) std::printf("---:|---:|---:|");
  std::printf("\n");
  for (const Point& p : points) {
    const double per_sample = p.compute_ms * 1e-3 / (static_cast<double>(o.batch) / comm.size());
    const double compute = per_sample * o.batch;
    std::printf("| %.3f | %.2f |", p.sparsity, 1e3 * compute);
    for (int n : o.nodes) {
      const double x = model_exchange_seconds(p.payload, n, bps, latency);
      std::printf(" %.2f | %.0f | %.0f%% |", 1e3 * x, n * o.batch / (compute + x), 100 * compute / (compute + x));
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace st::bench
