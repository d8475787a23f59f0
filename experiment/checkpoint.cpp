#include "experiment/checkpoint.h"

#include <cstring>
#include <sstream>

#include "experiment/safetensors.h"

namespace st::experiment {

namespace {

constexpr const char* kFormat = "sparsetrain-checkpoint-1";

NamedTensor to_named(const std::string& name, const Tensor& t) {
  ST_ASSERT(t.dtype() == DType::f32, "checkpoint holds f32 tensors");
  NamedTensor n;
  n.name = name;
  n.dtype = "F32";
  n.shape = t.shape();
  n.bytes.resize(t.nbytes());
  if (t.nbytes()) std::memcpy(n.bytes.data(), t.raw(), t.nbytes());
  return n;
}

void from_named(const std::string& path, const NamedTensor* n, const std::string& name, Tensor& t) {
  ST_CHECK(n != nullptr, path, ": checkpoint has no tensor \"", name, "\"");
  ST_CHECK(n->dtype == "F32", path, ": tensor \"", name, "\" is ", n->dtype, ", expected F32");
  ST_CHECK(Shape(n->shape) == t.shape(), path, ": tensor \"", name, "\" has shape ",
           shape_str(n->shape), ", the model expects ", shape_str(t.shape()));
  if (t.nbytes()) std::memcpy(t.raw(), n->bytes.data(), t.nbytes());
}

CheckpointInfo parse_info(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto get = [&](const char* key) {
    auto it = meta.find(key);
    ST_CHECK(it != meta.end(), path, ": not a sparsetrain checkpoint (metadata \"", key,
             "\" missing)");
    return it->second;
  };
  ST_CHECK(get("format") == kFormat, path, ": checkpoint format \"", get("format"), "\", expected \"",
           kFormat, "\"");
  CheckpointInfo info;
  try {
    info.epoch = std::stoi(get("epoch"));
    info.optimizer_steps = std::stoll(get("optimizer_steps"));
    info.config = nlohmann::json::parse(get("config"));
  } catch (const std::logic_error& e) {
    throw Error(path + ": corrupt checkpoint metadata (" + e.what() + ")");
  }
  return info;
}

}  // namespace

void save_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer, int epoch,
                     const Config& config) {
  std::vector<NamedTensor> tensors;
  for (Parameter* p : model.parameters()) tensors.push_back(to_named(p->name, p->var.value()));
  if (optimizer)
    for (auto& [name, t] : optimizer->state()) tensors.push_back(to_named("optimizer." + name, *t));
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["epoch"] = std::to_string(epoch);
  meta["optimizer_steps"] = std::to_string(optimizer ? optimizer->steps() : 0);
  std::ostringstream rng;
  for (uint64_t w : model.dropout_rng().state()) rng << w << ' ';
  meta["dropout_rng"] = rng.str();
  meta["config"] = to_json(config).dump();
  write_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  return parse_info(path, f.metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer) {
  SafetensorsFile f = read_safetensors(path);
  CheckpointInfo info = parse_info(path, f.metadata);
  for (Parameter* p : model.parameters()) from_named(path, f.find(p->name), p->name, p->var.value());
  if (optimizer) {
    for (auto& [name, t] : optimizer->state())
      from_named(path, f.find("optimizer." + name), "optimizer." + name, *t);
    optimizer->set_steps(info.optimizer_steps);
    std::istringstream rng(f.metadata.count("dropout_rng") ? f.metadata.at("dropout_rng") : "");
    std::array<uint64_t, 4> s{};
    for (auto& w : s) ST_CHECK(static_cast<bool>(rng >> w), path, ": corrupt dropout_rng metadata");
    model.dropout_rng().set_state(s);
  }
  return info;
}

}  // namespace st::experiment
