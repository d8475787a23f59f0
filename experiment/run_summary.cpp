#include "experiment/run_summary.h"

#include <algorithm>
#include <cstdio>

#include "core/check.h"
#include "experiment/memory_estimate.h"
#include "experiment/run_folder.h"

namespace st::experiment {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool in_csr(const nlohmann::json& epoch, const std::string& weight) {
  const auto& layers = epoch.at("layers");
  return layers.contains(weight) && layers[weight].value("mode", "dense") == "csr";
}


std::string seconds_text(double seconds) {
  char buf[32];
  if (seconds < 0.1)
    std::snprintf(buf, sizeof buf, "%.1f ms", seconds * 1e3);
  else
    std::snprintf(buf, sizeof buf, seconds < 10 ? "%.2f s" : "%.1f s", seconds);
  return buf;
}

}  // namespace

RunSummary summarize_run(const std::vector<nlohmann::json>& metrics, const std::string& run_dir,
                         int64_t checkpoint_bytes) {
  ST_CHECK(!metrics.empty(), RunPaths(run_dir).metrics, ": no epoch to summarise");
  RunSummary s;
  s.run_dir = run_dir;
  s.checkpoint_bytes = checkpoint_bytes;
  const nlohmann::json& last = metrics.back();
  s.epochs = last.value("epoch", static_cast<int>(metrics.size()));
  s.test_accuracy = last.value("test_accuracy", 0.0);
  s.sparsity = last.value("sparsity", 0.0);
  const nlohmann::json layers = last.value("layers", nlohmann::json::object());
  for (const auto& [weight, layer] : layers.items()) {
    s.weights += layer.value("params", int64_t{0});
    s.nonzeros += layer.value("nonzeros", int64_t{0});
    if (!in_csr(last, weight)) {
      s.dense_layers.push_back(weight);
      continue;
    }
    size_t first = metrics.size() - 1;  // the trailing stretch of epochs that ended in CSR
    while (first > 0 && metrics[first - 1].contains("layers") && in_csr(metrics[first - 1], weight)) --first;
    s.csr_layers.push_back({weight, metrics[first].value("epoch", static_cast<int>(first) + 1)});
  }
  std::vector<double> dense_seconds, csr_seconds;
  for (size_t e = 0; e < metrics.size(); ++e) {
    const nlohmann::json& m = metrics[e];
    if (!m.contains("layers")) continue;
    bool none = true, all_final = !s.csr_layers.empty();
    for (const auto& [weight, layer] : m["layers"].items()) none = none && layer.value("mode", "dense") != "csr";
    for (const CsrLayer& c : s.csr_layers) {
      const bool before = e > 0 && metrics[e - 1].contains("layers") && in_csr(metrics[e - 1], c.weight);
      all_final = all_final && before && in_csr(m, c.weight);
    }
    const double seconds = m.value("epoch_seconds", 0.0);
    if (none) dense_seconds.push_back(seconds);
    if (all_final) csr_seconds.push_back(seconds);
  }
  for (const nlohmann::json& m : metrics)
    s.peak_resident_bytes = std::max(s.peak_resident_bytes, m.value("peak_resident_bytes", int64_t{-1}));
  s.dense_epoch_seconds = median(dense_seconds);
  s.csr_epoch_seconds = median(csr_seconds);
  return s;
}

nlohmann::json RunSummary::to_json() const {
  nlohmann::json j;
  j["weights"] = weights;
  j["weights_nonzero"] = nonzeros;
  nlohmann::json csr = nlohmann::json::object();
  for (const CsrLayer& c : csr_layers) csr[c.weight] = {{"from_epoch", c.from_epoch}};
  j["csr_layers"] = csr;
  j["dense_layers"] = dense_layers;
  if (dense_epoch_seconds >= 0) j["median_epoch_seconds_dense"] = dense_epoch_seconds;
  if (csr_epoch_seconds >= 0) j["median_epoch_seconds_csr"] = csr_epoch_seconds;
  if (dense_epoch_seconds > 0 && csr_epoch_seconds > 0)
    j["csr_epoch_speedup"] = dense_epoch_seconds / csr_epoch_seconds;
  if (checkpoint_bytes >= 0) j["checkpoint_bytes"] = checkpoint_bytes;
  if (peak_resident_bytes >= 0) j["peak_resident_bytes"] = peak_resident_bytes;
  return j;
}

std::string sparsity_text(double fraction) {
  char buf[32];
  for (int decimals = 1;; ++decimals) {
    std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100 * fraction);
    if (fraction >= 1 || decimals >= 6 || std::string(buf).rfind("100.", 0) != 0) return buf;
  }
}

std::string RunSummary::to_text() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "done: test accuracy %.2f%% after %d epochs | sparsity %s: %lld of %lld weights nonzero\n",
                100 * test_accuracy, epochs, sparsity_text(sparsity).c_str(), static_cast<long long>(nonzeros),
                static_cast<long long>(weights));
  out += line;
  if (csr_layers.empty()) {
    out += "  CSR: no layer (every layer ran dense; a layer switches at sparse.threshold)\n";
  } else {
    out += "  CSR:";
    for (size_t i = 0; i < csr_layers.size(); ++i)
      out += (i ? ", " : " ") + csr_layers[i].weight + " from epoch " + std::to_string(csr_layers[i].from_epoch);
    if (!dense_layers.empty()) {
      out += " (dense:";
      for (size_t i = 0; i < dense_layers.size(); ++i) out += (i ? ", " : " ") + dense_layers[i];
      out += ")";
    }
    out += "\n";
  }
  if (dense_epoch_seconds >= 0 && csr_epoch_seconds > 0) {
    std::snprintf(line, sizeof line, ": %.2fx faster\n", dense_epoch_seconds / csr_epoch_seconds);
    out += "  epoch time (median): " + seconds_text(dense_epoch_seconds) + " dense, " +
           seconds_text(csr_epoch_seconds) + " in CSR" + line;
  } else if (csr_epoch_seconds > 0) {
    out += "  epoch time (median): " + seconds_text(csr_epoch_seconds) + " in CSR (no epoch ran dense)\n";
  } else if (dense_epoch_seconds >= 0) {
    out += "  epoch time (median): " + seconds_text(dense_epoch_seconds) + "\n";
  }
  out += "  checkpoint " + (checkpoint_bytes >= 0 ? bytes_text(checkpoint_bytes) : std::string("none"));
  if (peak_resident_bytes >= 0) out += " | peak memory " + bytes_text(peak_resident_bytes);
  out += " | run folder " + run_dir + "\n";
  return out;
}

}  // namespace st::experiment
