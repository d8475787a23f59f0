// app/cmd_export.cpp — `sparsetrain export --compact`: a smaller dense model from a pruned checkpoint.
#include <cstdio>
#include <memory>

#include "app/cli.h"
#include "core/check.h"
#include "experiment/export.h"

namespace st::app {

namespace {

struct ExportOptions {
  std::string target, out;
  bool compact = false;
};

int run_export(const ExportOptions& o) {
  ST_CHECK(o.compact, "export: only --compact is supported (write a compact dense model)");
  check_writable(o.out, "--out");
  const auto r = experiment::export_compact(o.target, o.out);
  std::printf("%s: %lld -> %lld parameters, %lld -> %lld MACs/sample\n", o.out.c_str(),
              static_cast<long long>(r.params_before), static_cast<long long>(r.params_after),
              static_cast<long long>(r.macs_before), static_cast<long long>(r.macs_after));
  return 0;
}

}  // namespace

Command add_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand("export", "Write a smaller dense model from a neuron/filter-pruned checkpoint");
  cmd->add_option("checkpoint", o->target, "checkpoint.safetensors or a run folder")->required();
  cmd->add_flag("--compact", o->compact, "Drop pruned neurons/filters (and the inputs they fed)");
  cmd->add_option("--out", o->out, "Output file: new, or an earlier export; never the input or a run's own files")->required();
  return {cmd, [o] { return run_export(*o); }};
}

}  // namespace st::app
