// pruning/report.h — what a (masked) model costs, for metrics.jsonl and the screen: per prunable layer
// and in total, sparsity, nonzeros, dense vs CSR storage and MACs remaining. Counts come from the masks
// (a dense model reports sparsity 0). Storage: dense 4·numel bytes; a prunable weight as CSR over its
// (rows × fan-in) view 4·nnz (values) + 4·nnz (column indices) + 4·(rows + 1) (row offsets); other
// parameters stay dense. MACs per sample: a weight's dense MACs × its density (each weight takes part
// in OH·OW MACs of a conv, in one of a linear layer). Tests: tests/pruning/test_pruner.cpp ("report: ...")
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"

namespace st::pruning {

struct LayerReport {
  std::string name;  // parameter name ("fc1.weight")
  int64_t params = 0, nonzeros = 0;
  double sparsity = 0;
  int64_t dense_bytes = 0, sparse_bytes = 0;
  int64_t dense_macs = 0, macs = 0;
};

struct Report {
  std::vector<LayerReport> layers;  // prunable weights, in model order
  int64_t params = 0, nonzeros = 0;  // every parameter (biases too)
  double sparsity = 0;               // over the prunable weights
  int64_t dense_bytes = 0, sparse_bytes = 0;
  int64_t dense_macs = 0, macs = 0;

  // {"sparsity", "nonzeros", "params", "dense_bytes", "sparse_bytes", "macs", "dense_macs",
  //  "layers": {"fc1.weight": {"sparsity", "nonzeros", "params", "dense_bytes", "sparse_bytes", "macs"}}}
  nlohmann::json to_json() const;
};

int64_t csr_bytes(int64_t rows, int64_t nnz);
Report make_report(models::Model& model);

}  // namespace st::pruning
