// pruning/granularity.h — which elements fall together. A weight is viewed as a (rows × cols) matrix
// (rows = output units, cols = fan-in = C·KH·KW) and split into groups:
//   element  every weight                         neuron/filter  an output row (unit)
//   channel  an input channel (area columns)      block          a bh × bw tile (edge tiles smaller)
//   nm       n of every m consecutive fan-in weights are kept (selection inside each run of m)
// Group scores reduce element scores (sum, mean, or root of sum for L2 norms); a group whose elements
// are all pruned already scores -inf, so masks only shrink under one_shot/iterative/gradual.
// Tests: tests/pruning/test_parts.cpp
#pragma once
#include <cstdint>
#include <vector>

#include "pruning/config.h"
#include "pruning/layers.h"

namespace st::pruning {

enum class Reduction { Sum, Mean, RootSum };

class Groups {
 public:
  Groups(const GranularityConfig& g, int64_t rows, int64_t cols, int64_t area);
  Groups(const GranularityConfig& g, const PrunableLayer& L) : Groups(g, L.rows, L.cols, L.area) {}
  int64_t count() const { return count_; }
  int64_t group_of(int64_t r, int64_t c) const;
  // scores: element scores (rows·cols, row-major); mask: current mask or nullptr (dense).
  std::vector<double> reduce(const float* scores, const uint8_t* mask, Reduction red) const;
  // One keep flag per group -> element mask (rows·cols).
  std::vector<uint8_t> expand(const std::vector<uint8_t>& keep) const;

 private:
  GranularityType type_;
  int64_t rows_, cols_, area_, bh_ = 1, bw_ = 1, block_cols_ = 1, count_ = 0;
};

// N:M: in each row, each run of m consecutive columns keeps its n highest scores (ties: lower index).
// cols % m == 0 (checked by the Pruner).
std::vector<uint8_t> nm_mask(const float* scores, int64_t rows, int64_t cols, int n, int m);

// Keep flags for one layer: prunes the round(sparsity·G) lowest-scoring groups (never fewer than the
// groups already dead at -inf). Ties break by group index, so results are deterministic.
std::vector<uint8_t> select_lowest(const std::vector<double>& scores, double sparsity);
// One cut over several layers: prunes the round(sparsity·ΣG) lowest groups among the eligible layers;
// ineligible layers keep every live group. Returns keep flags per layer.
std::vector<std::vector<uint8_t>> select_global(const std::vector<std::vector<double>>& scores,
                                                const std::vector<bool>& eligible, double sparsity);
// Prunes groups scoring below `threshold` (and dead ones) in the eligible layers.
std::vector<uint8_t> select_threshold(const std::vector<double>& scores, double threshold);

}  // namespace st::pruning
