#include "pruning/report.h"

#include <algorithm>

#include "pruning/layers.h"

namespace st::pruning {

int64_t csr_bytes(int64_t rows, int64_t nnz) { return 4 * nnz + 4 * nnz + 4 * (rows + 1); }

Report make_report(models::Model& model) {
  Report r;
  const auto layers = prunable_layers(model);
  int64_t prunable = 0, prunable_kept = 0;
  std::vector<const Parameter*> weights;
  for (const auto& L : layers) {
    LayerReport lr;
    lr.name = L.weight->name;
    lr.params = L.numel();
    lr.nonzeros = count_kept(*L.weight);
    lr.sparsity = lr.params ? 1.0 - static_cast<double>(lr.nonzeros) / lr.params : 0.0;
    lr.dense_bytes = 4 * lr.params;
    lr.sparse_bytes = csr_bytes(L.rows, lr.nonzeros);
    lr.dense_macs = L.dense_macs;
    lr.macs = lr.params ? static_cast<int64_t>(static_cast<double>(L.dense_macs) * lr.nonzeros / lr.params) : 0;
    prunable += lr.params;
    prunable_kept += lr.nonzeros;
    r.dense_macs += lr.dense_macs;
    r.macs += lr.macs;
    r.sparse_bytes += lr.sparse_bytes;
    weights.push_back(L.weight);
    r.layers.push_back(lr);
  }
  for (Parameter* p : model.parameters()) {
    const int64_t n = p->numel();
    r.params += n;
    r.nonzeros += count_kept(*p);
    r.dense_bytes += 4 * n;
    if (std::find(weights.begin(), weights.end(), p) == weights.end()) r.sparse_bytes += 4 * n;
  }
  r.sparsity = prunable ? 1.0 - static_cast<double>(prunable_kept) / prunable : 0.0;
  return r;
}

nlohmann::json Report::to_json() const {
  nlohmann::json j;
  j["sparsity"] = sparsity;
  j["nonzeros"] = nonzeros;
  j["params"] = params;
  j["dense_bytes"] = dense_bytes;
  j["sparse_bytes"] = sparse_bytes;
  j["macs"] = macs;
  j["dense_macs"] = dense_macs;
  nlohmann::json ls = nlohmann::json::object();
  for (const auto& l : layers)
    ls[l.name] = {{"sparsity", l.sparsity}, {"nonzeros", l.nonzeros},         {"params", l.params},
                  {"dense_bytes", l.dense_bytes}, {"sparse_bytes", l.sparse_bytes}, {"macs", l.macs}};
  j["layers"] = ls;
  return j;
}

}  // namespace st::pruning
