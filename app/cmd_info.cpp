// app/cmd_info.cpp — `sparsetrain info`: a checkpoint's metadata, its tensors, and per weight its
// dense size against its CSR size.
#include <algorithm>
#include <cstdio>

#include "app/cli.h"
#include "core/tensor.h"
#include "experiment/checkpoint_keys.h"
#include "experiment/config.h"
#include "experiment/json_errors.h"
#include "experiment/run_folder.h"
#include "experiment/safetensors.h"

namespace st::app {

namespace {

void print_metadata(const std::string& ckpt, const experiment::SafetensorsFile& f) {
  for (const auto& [k, v] : f.metadata)
    if (k != experiment::kConfigKey) std::printf("  %-16s %s\n", k.c_str(), v.c_str());
  if (!f.metadata.count(experiment::kConfigKey)) return;
  const experiment::Config c = experiment::parse_config(
      experiment::parse_user_json(f.metadata.at(experiment::kConfigKey), ckpt + " (config)"), ckpt + " (config)");
  std::printf("  %-16s %s\n", "config", experiment::describe(c).c_str());
}

void print_tensors(const experiment::SafetensorsFile& f) {
  std::printf("\n  %-40s %-5s %-18s %12s\n", "tensor", "dtype", "shape", "bytes");
  size_t total = 0;
  for (const auto& t : f.tensors) {
    std::printf("  %-40s %-5s %-18s %12zu\n", t.name.c_str(), t.dtype.c_str(), shape_str(t.shape).c_str(),
                t.bytes.size());
    total += t.bytes.size();
  }
  std::printf("  %zu tensors, %zu bytes\n", f.tensors.size(), total);
}

// One weight's row: its CSR size as stored (a layer saved in CSR mode), or what CSR over its mask
// would take, or "-" for a dense weight without a mask.
void print_weight_size(const experiment::SafetensorsFile& f, const experiment::NamedTensor& t) {
  const experiment::CsrKeys keys = experiment::csr_keys(t.name);
  const auto* row_ptr = f.find(keys.row_ptr);
  const auto* col_idx = f.find(keys.col_idx);
  const auto* values = f.find(keys.values);
  const auto* mask = f.find(experiment::mask_key(t.name));
  int64_t sparse_bytes = -1, nnz = 0;
  const int64_t rows = t.shape[0];
  if (row_ptr && col_idx && values) {
    sparse_bytes = static_cast<int64_t>(row_ptr->bytes.size() + col_idx->bytes.size() + values->bytes.size());
    nnz = static_cast<int64_t>(values->bytes.size() / 4);
  } else if (mask) {
    for (uint8_t b : mask->bytes) nnz += b != 0;
    sparse_bytes = 8 * nnz + 4 * (rows + 1);
  }
  const int64_t dense_bytes = static_cast<int64_t>(t.bytes.size());
  if (sparse_bytes < 0)
    std::printf("  %-28s %-6s %12lld %12s %10s %8s\n", t.name.c_str(), "dense", static_cast<long long>(dense_bytes),
                "-", "-", "-");
  else
    std::printf("  %-28s %-6s %12lld %12lld %10lld %7.2fx\n", t.name.c_str(), row_ptr ? "csr" : "dense",
                static_cast<long long>(dense_bytes), static_cast<long long>(sparse_bytes),
                static_cast<long long>(nnz), double(dense_bytes) / std::max<int64_t>(sparse_bytes, 1));
}

void print_weight_sizes(const experiment::SafetensorsFile& f) {
  bool header = false;
  for (const auto& t : f.tensors) {
    if (t.dtype != "F32" || t.shape.size() < 2) continue;
    if (!header) {
      std::printf("\n  %-28s %-6s %12s %12s %10s %8s\n", "weight", "mode", "dense bytes", "csr bytes", "nonzeros",
                  "ratio");
      header = true;
    }
    print_weight_size(f, t);
  }
}

int run_info(const std::string& target) {
  const std::string ckpt = experiment::checkpoint_file(target, "info");
  const experiment::SafetensorsFile f = experiment::read_safetensors(ckpt);
  std::printf("%s\n", ckpt.c_str());
  print_metadata(ckpt, f);
  print_tensors(f);
  print_weight_sizes(f);
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto target = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("info", "List a checkpoint's tensors and metadata");
  cmd->add_option("checkpoint", *target, "checkpoint.safetensors or a run folder")->required();
  return {cmd, [target] { return run_info(*target); }};
}

}  // namespace st::app
