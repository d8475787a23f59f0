// bench/bench.h — benchmark commands (`sparsetrain bench ...`), in the library st_bench. Not part of
// the test run: speed is measured here, with warm-up and medians, never by timed tests.
#pragma once
#include <string>
#include <vector>

#include "core/ops.h"

namespace st::bench {

struct TrainBenchOptions {
  std::vector<std::string> models{"lenet300", "lenet5", "simplecnn"};  // as model.arch spells them
  int batch = 64;
  int steps = 300;     // timed steps per repeat
  int repeats = 5;
  int warmup = 50;
  DenseBackend backend = DenseBackend::onednn;
  int threads = 2;
  std::string json_path;  // optional machine-readable output
  // Non-empty: for each sparsity, random masks at that sparsity on every prunable layer, trained in
  // each of `modes` ("dense": masked dense, "csr": every layer in CSR), side by side.
  std::vector<double> sparsities;
  // "cusparse": every layer in CSR with the products through cuSPARSE (device "cuda" only).
  std::vector<std::string> modes{"dense", "csr"};
  // cuda: the model, its optimizer state and the batches live on the GPU (a real one; the emulator
  // is refused), and the clock is read after synchronizing the device.
  Device device = Device::cpu;
};

// Training throughput (samples/s, median over repeats) of each model on in-memory data, with SGD
// (lr 0.01, momentum 0.9) — the same protocol as bench/pytorch_train.py. With sparsities: dense-masked
// vs CSR throughput per sparsity and their ratio.
int bench_train(const TrainBenchOptions& options);

struct KernelBenchOptions {
  int threads = 2;
  std::vector<std::string> shapes;  // "OUTxINxBATCH" filter (e.g. "1024x1024x128"); empty = all
  bool quick = false;               // sparsities 0/50/90/99 and shorter timing, for smoke tests
  std::string csv_path, md_path, svg_path;  // optional outputs (the markdown also goes to stdout)
  // "cpu" (CPU kernels vs oneDNN) and/or "cuda" (CUDA kernels and cuSPARSE vs cuBLAS, on a real
  // GPU; the emulator is refused).
  std::vector<std::string> devices{"cpu"};
};

// CSR SpMM (y = x·Wᵀ), SpMMᵀ (dx = dy·W) and SDDMM (dW at the nonzeros) against our dense sgemm
// and oneDNN dense (cpu), or against cuBLAS and our cuda::sgemm beside cuSPARSE (cuda), over Linear
// shapes × sparsities; see bench/bench_kernels.cpp.
int bench_kernels(const KernelBenchOptions& options);

struct WidthBenchOptions {
  std::vector<int> widths{2000, 10000, 100000, 1000000};  // hidden units h of 784-h-h-10
  int64_t nonzeros = 4000000;  // in the whole model (each layer capped at its size)
  int batch = 128;
  int steps = 5;     // timed steps per repeat
  int repeats = 3;
  int warmup = 2;
  int threads = 2;
};

// Training step time of a sparse 784-h-h-10 MLP at a fixed number of nonzeros over widths h; see
// bench/bench_width.cpp.
int bench_width(const WidthBenchOptions& options);

struct DistributedBenchOptions {
  std::string model = "lenet5";  // lenet300 | lenet5 | simplecnn | mlp (with hidden)
  std::vector<int> hidden;       // mlp: hidden widths
  std::vector<double> sparsities{0, 0.9, 0.95, 0.99};  // 0 = dense (also gives the bound's biases)
  int batch = 64;          // the global batch (split over the parts)
  int steps = 100;         // per epoch; the second of two epochs is timed
  int threads = 1;         // per rank
  int micro_batches = 0;   // 0 = one part per rank
  double link_gbps = 10, latency_us = 20;  // the scaling model's network
  std::vector<int> nodes{8, 64};
};

// Data-parallel training per sparsity as the trainer runs it on the launched ranks (samples/s,
// compute and exchange time, bytes per step against the bound), and a weak-scaling model from
// those figures; see bench/bench_distributed.cpp.
int bench_distributed(const DistributedBenchOptions& options);

}  // namespace st::bench
