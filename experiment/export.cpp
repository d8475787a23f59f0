#include "experiment/export.h"

#include "core/csr_weight.h"

#include "experiment/checkpoint.h"
#include "experiment/run_folder.h"
#include "experiment/setup.h"
#include "models/builder.h"
#include "pruning/compact.h"

namespace st::experiment {

namespace {

nlohmann::json layer_json(const models::LayerSpec& l) {
  nlohmann::json j = {{"type", to_string(l.type)}, {"name", l.name}};
  if (l.type == LayerType::linear) {
    j["out_features"] = l.out;
    j["bias"] = l.bias;
  } else if (l.type == LayerType::conv2d) {
    j["out_channels"] = l.out;
    j["kernel"] = {l.kernel_h, l.kernel_w};
    j["stride"] = {l.stride_h ? l.stride_h : 1, l.stride_w ? l.stride_w : 1};
    j["padding"] = {l.pad_h, l.pad_w};
    j["bias"] = l.bias;
  } else if (l.type == LayerType::maxpool2d || l.type == LayerType::avgpool2d) {
    j["kernel"] = {l.kernel_h, l.kernel_w};
    j["stride"] = {l.stride_h ? l.stride_h : l.kernel_h, l.stride_w ? l.stride_w : l.kernel_w};
    j["padding"] = {l.pad_h, l.pad_w};
  } else if (l.type == LayerType::dropout) {
    j["p"] = l.p;
  }
  return j;
}

}  // namespace

ExportResult export_compact(const std::string& target, const std::string& out_path) {
  const std::string ckpt = checkpoint_file(target, "export");
  refuse_run_file(out_path, ckpt, "--out");
  CheckpointInfo info = read_checkpoint_info(ckpt);
  Config config = parse_config(info.config, ckpt + " (config)");
  const data::Dataset shape = sample_shape(config);
  const Shape input{shape.channels, shape.height, shape.width};
  const int classes = shape.num_classes;
  const models::ModelSpec spec = model_spec(config);
  auto model = models::build_model(spec, input, classes, config.seed, /*allocate=*/false);
  load_checkpoint(ckpt, *model, nullptr);
  for (Parameter* p : model->parameters()) to_dense(*p);  // the compaction reads masks and dense weights

  const auto kept = pruning::kept_units(*model);
  models::ModelSpec small = spec;
  small.arch = Arch::layers;
  small.layers = pruning::compact_layer_specs(*model, models::architecture_layers(spec, classes), kept);
  auto compact = models::build_model(small, input, classes, config.seed);
  pruning::copy_compact(*model, *compact, kept);

  nlohmann::json raw = to_json(config);
  raw["model"]["arch"] = "layers";
  raw["model"]["dropout"] = 0.0;
  raw["model"].erase("hidden");
  raw["model"]["layers"] = nlohmann::json::array();
  for (const auto& l : small.layers) raw["model"]["layers"].push_back(layer_json(l));
  raw.erase("pruning");
  const Config compact_config = parse_config(raw, out_path + " (compact config)");
  save_checkpoint(out_path, *compact, nullptr, info.epoch, compact_config);

  ExportResult r;
  r.params_before = model->num_parameters();
  r.params_after = compact->num_parameters();
  r.macs_before = model->macs_per_sample();
  r.macs_after = compact->macs_per_sample();
  return r;
}

}  // namespace st::experiment
