#include "experiment/checkpoint.h"

#include <cstring>
#include <sstream>

#include "experiment/safetensors.h"

namespace st::experiment {

namespace {

constexpr const char* kFormat = "sparsetrain-checkpoint-1";

NamedTensor to_named(const std::string& name, const Tensor& t) {
  ST_ASSERT(t.dtype() == DType::f32 || t.dtype() == DType::u8, "checkpoint holds f32 and u8 tensors");
  NamedTensor n;
  n.name = name;
  n.dtype = t.dtype() == DType::u8 ? "U8" : "F32";
  n.shape = t.shape();
  n.bytes.resize(t.nbytes());
  if (t.nbytes()) std::memcpy(n.bytes.data(), t.raw(), t.nbytes());
  return n;
}

void from_named(const std::string& path, const NamedTensor* n, const std::string& name, Tensor& t) {
  ST_CHECK(n != nullptr, path, ": checkpoint has no tensor \"", name, "\"");
  const char* want = t.dtype() == DType::u8 ? "U8" : "F32";
  ST_CHECK(n->dtype == want, path, ": tensor \"", name, "\" is ", n->dtype, ", expected ", want);
  ST_CHECK(Shape(n->shape) == t.shape(), path, ": tensor \"", name, "\" has shape ",
           shape_str(n->shape), ", the model expects ", shape_str(t.shape()));
  if (t.nbytes()) std::memcpy(t.raw(), n->bytes.data(), t.nbytes());
}

std::string rng_text(const Rng& r) {
  std::ostringstream os;
  for (uint64_t w : r.state()) os << w << ' ';
  return os.str();
}

void parse_rng(const std::string& path, const std::map<std::string, std::string>& meta, const char* key, Rng& r) {
  std::istringstream in(meta.count(key) ? meta.at(key) : "");
  std::array<uint64_t, 4> s{};
  for (auto& w : s) ST_CHECK(static_cast<bool>(in >> w), path, ": corrupt or missing ", key, " metadata");
  r.set_state(s);
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
                     const Config& config, pruning::Pruner* pruner) {
  std::vector<NamedTensor> tensors;
  for (Parameter* p : model.parameters()) tensors.push_back(to_named(p->name, p->var.value()));
  for (Parameter* p : model.parameters())
    if (p->mask.defined()) tensors.push_back(to_named("mask." + p->name, p->mask));
  if (pruner)
    for (auto& s : pruner->state_tensors())
      if (s.tensor->defined()) tensors.push_back(to_named(s.name, *s.tensor));
  if (optimizer)
    for (auto& [name, t] : optimizer->state()) tensors.push_back(to_named("optimizer." + name, *t));
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["epoch"] = std::to_string(epoch);
  meta["optimizer_steps"] = std::to_string(optimizer ? optimizer->steps() : 0);
  meta["dropout_rng"] = rng_text(model.dropout_rng());
  meta["config"] = to_json(config).dump();
  if (pruner) meta["pruning_rng"] = rng_text(pruner->rng());
  write_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  return parse_info(path, f.metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer,
                               pruning::Pruner* pruner) {
  SafetensorsFile f = read_safetensors(path);
  CheckpointInfo info = parse_info(path, f.metadata);
  for (Parameter* p : model.parameters()) {
    from_named(path, f.find(p->name), p->name, p->var.value());
    const std::string mask_name = "mask." + p->name;
    if (const NamedTensor* m = f.find(mask_name)) {
      p->mask = Tensor(p->var.value().shape(), DType::u8);
      from_named(path, m, mask_name, p->mask);
      pruning::apply_mask(*p);
    } else {
      p->mask = Tensor();
    }
  }
  if (pruner) {
    for (auto& s : pruner->state_tensors()) {
      if (const NamedTensor* t = f.find(s.name)) {
        *s.tensor = Tensor(s.shape);
        from_named(path, t, s.name, *s.tensor);
      } else {
        *s.tensor = Tensor();
      }
    }
    if (f.metadata.count("pruning_rng")) parse_rng(path, f.metadata, "pruning_rng", pruner->rng());
  }
  if (optimizer) {
    for (auto& [name, t] : optimizer->state())
      from_named(path, f.find("optimizer." + name), "optimizer." + name, *t);
    optimizer->set_steps(info.optimizer_steps);
    parse_rng(path, f.metadata, "dropout_rng", model.dropout_rng());
  }
  return info;
}

}  // namespace st::experiment
