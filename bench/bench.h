// bench/bench.h — benchmark commands (`sparsetrain bench ...`). Not part of the test run: speed is
// measured here, with warm-up and medians, never by timed tests.
#pragma once
#include <string>
#include <vector>

namespace st::bench {

struct TrainBenchOptions {
  std::vector<std::string> models{"lenet300", "lenet5", "simplecnn"};
  int batch = 64;
  int steps = 300;     // timed steps per repeat
  int repeats = 5;
  int warmup = 50;
  std::string backend = "onednn";
  int threads = 2;
  std::string json_path;  // optional machine-readable output
};

// Training throughput (samples/s, median over repeats) of each model on in-memory data, with SGD
// (lr 0.01, momentum 0.9) — the same protocol as bench/pytorch_train.py.
int bench_train(const TrainBenchOptions& options);

}  // namespace st::bench
