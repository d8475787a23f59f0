#include "experiment/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/csr_weight.h"
#include "experiment/checkpoint_keys.h"
#include "experiment/finite.h"
#include "experiment/json_errors.h"
#include "experiment/safetensors.h"
#include "kernels/elementwise.h"

namespace st::experiment {

namespace {

// A tensor on either device (a cuda tensor is downloaded: the file format knows no devices).
NamedTensor to_named(const std::string& name, const Tensor& t_any) {
  ST_ASSERT(t_any.dtype() == DType::f32 || t_any.dtype() == DType::u8, "checkpoint holds f32 and u8 tensors");
  const Tensor t = t_any.to(st::Device::cpu);
  NamedTensor n;
  n.name = name;
  n.dtype = t.dtype() == DType::u8 ? "U8" : "F32";
  n.shape = t.shape();
  n.bytes.resize(t.nbytes());
  if (t.nbytes()) std::memcpy(n.bytes.data(), t.raw(), t.nbytes());
  return n;
}

// NaN or Inf in a checkpoint would train on silently (or score at chance): refused, named.
void check_finite(const std::string& path, const std::string& name, const float* v, int64_t n) {
  const int64_t i = kernels::first_non_finite(n, v);
  ST_CHECK(i < 0, path, ": tensor \"", name, "\" holds a non-finite value (", v[i], " at index ", i,
           "): the run that wrote it diverged, or the file is damaged");
}

void from_named(const std::string& path, const NamedTensor* n, const std::string& name, Tensor& t) {
  ST_CHECK(n != nullptr, path, ": checkpoint has no tensor \"", name, "\"");
  const char* want = t.dtype() == DType::u8 ? "U8" : "F32";
  ST_CHECK(n->dtype == want, path, ": tensor \"", name, "\" is ", n->dtype, ", expected ", want);
  ST_CHECK(Shape(n->shape) == t.shape(), path, ": tensor \"", name, "\" has shape ",
           shape_str(n->shape), ", the model expects ", shape_str(t.shape()));
  ST_ASSERT(t.device() == st::Device::cpu, "checkpoints load into host tensors");
  if (t.nbytes()) std::memcpy(t.raw(), n->bytes.data(), t.nbytes());
  if (t.dtype() == DType::f32) check_finite(path, name, t.f32(), t.numel());
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

template <class T>
NamedTensor vector_named(const std::string& name, const char* dtype, const std::vector<T>& v) {
  NamedTensor n;
  n.name = name;
  n.dtype = dtype;
  n.shape = {static_cast<int64_t>(v.size())};
  n.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(n.bytes.data(), v.data(), n.bytes.size());
  return n;
}

template <class T>
std::vector<T> named_vector(const std::string& path, const SafetensorsFile& f, const std::string& name,
                            const char* dtype) {
  const NamedTensor* n = f.find(name);
  ST_CHECK(n != nullptr, path, ": checkpoint has no tensor \"", name, "\"");
  ST_CHECK(n->dtype == dtype && n->shape.size() == 1, path, ": tensor \"", name, "\" is ", n->dtype, " ",
           shape_str(n->shape), ", expected a 1-d ", dtype, " tensor");
  std::vector<T> v(static_cast<size_t>(n->shape[0]));
  if (!v.empty()) std::memcpy(v.data(), n->bytes.data(), v.size() * sizeof(T));
  return v;
}

// A sparse weight: "<param>.csr.row_ptr" (I32, rows + 1), ".col_idx" (I32, nnz), ".values"
// (F32, nnz) over its (rows × fan-in) view -> p becomes sparse with that pattern (no dense storage).
void load_csr_weight(const std::string& path, const SafetensorsFile& f, Parameter& p) {
  const CsrKeys keys = csr_keys(p.name);
  kernels::CsrMatrix a;
  a.rows = static_cast<int>(p.shape[0]);
  a.cols = static_cast<int>(p.numel() / p.shape[0]);
  a.row_ptr = named_vector<int32_t>(path, f, keys.row_ptr, "I32");
  a.col_idx = named_vector<int32_t>(path, f, keys.col_idx, "I32");
  a.values = named_vector<float>(path, f, keys.values, "F32");
  check_finite(path, keys.values, a.values.data(), static_cast<int64_t>(a.values.size()));
  // row_ptr sorted before any col_idx is read: a later row cannot then point past nnz.
  bool ok = static_cast<int>(a.row_ptr.size()) == a.rows + 1 && a.row_ptr[0] == 0 &&
            a.row_ptr.back() == static_cast<int32_t>(a.col_idx.size()) && a.col_idx.size() == a.values.size() &&
            std::is_sorted(a.row_ptr.begin(), a.row_ptr.end());
  for (int r = 0; ok && r < a.rows; ++r) {
    for (int32_t k = a.row_ptr[r]; ok && k < a.row_ptr[r + 1]; ++k)
      ok = a.col_idx[k] >= 0 && a.col_idx[k] < a.cols && (k == a.row_ptr[r] || a.col_idx[k] > a.col_idx[k - 1]);
  }
  ST_CHECK(ok, path, ": tensors \"", keys.prefix, "*\" are not a valid CSR matrix of shape ", a.rows, "x", a.cols);
  p.var.value() = Tensor();
  p.var.zero_grad();
  p.mask = Tensor();
  p.csr = make_csr_weight(std::move(a), p.shape, Device::cpu);
}

CheckpointInfo parse_info(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto get = [&](const char* key) {
    auto it = meta.find(key);
    ST_CHECK(it != meta.end(), path, ": not a sparsetrain checkpoint (metadata \"", key,
             "\" missing)");
    return it->second;
  };
  ST_CHECK(get(kFormatKey) == kCheckpointFormat, path, ": checkpoint format \"", get(kFormatKey),
           "\", expected \"", kCheckpointFormat, "\"");
  CheckpointInfo info;
  try {
    info.epoch = std::stoi(get(kEpochKey));
    info.optimizer_steps = std::stoll(get(kOptimizerStepsKey));
    info.config = parse_user_json(get(kConfigKey), path + " (config)");
  } catch (const std::logic_error& e) {
    throw Error(path + ": corrupt checkpoint metadata (" + e.what() + ")");
  }
  return info;
}

}  // namespace

void save_checkpoint(const std::string& path, models::Model& model, Optimizer* optimizer, int epoch,
                     const Config& config, pruning::Pruner* pruner) {
  std::vector<NamedTensor> tensors;
  // Each weight in its own form: dense (with its mask), or sparse as CSR only, so that a checkpoint
  // is O(nonzeros) for sparse layers.
  for (Parameter* p : model.parameters()) {
    if (!p->csr) tensors.push_back(to_named(p->name, p->var.value()));
    if (p->csr) {
      download_csr_values(*p->csr);  // a cuda CSR weight's live values are on the device
      const kernels::CsrMatrix& a = p->csr->w;
      const CsrKeys keys = csr_keys(p->name);
      tensors.push_back(vector_named(keys.row_ptr, "I32", a.row_ptr));
      tensors.push_back(vector_named(keys.col_idx, "I32", a.col_idx));
      tensors.push_back(vector_named(keys.values, "F32", a.values));
    }
  }
  for (Parameter* p : model.parameters())
    if (p->mask.defined()) tensors.push_back(to_named(mask_key(p->name), p->mask));
  if (pruner)
    for (auto& s : pruner->state_tensors())
      if (s.tensor->defined()) tensors.push_back(to_named(s.name, *s.tensor));
  if (optimizer)
    for (auto& [name, t] : optimizer->state()) tensors.push_back(to_named(optimizer_key(name), *t));
  std::map<std::string, std::string> meta;
  meta[kFormatKey] = kCheckpointFormat;
  meta[kEpochKey] = std::to_string(epoch);
  meta[kOptimizerStepsKey] = std::to_string(optimizer ? optimizer->steps() : 0);
  meta[kDropoutRngKey] = rng_text(model.dropout_rng());
  meta[kConfigKey] = to_json(config).dump();
  if (pruner) meta[kPruningRngKey] = rng_text(pruner->rng());
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
  // Loaded on the host (the format knows no devices: a file written on cuda loads on the cpu and
  // the other way round); a model on a device goes back there after.
  const st::Device device = model.device();
  if (device != st::Device::cpu) {
    model.to(st::Device::cpu);
    if (optimizer) optimizer->to(st::Device::cpu);
  }
  for (Parameter* p : model.parameters()) {
    ++p->mask_version;
    if (f.find(csr_keys(p->name).values) != nullptr) {  // sparse
      load_csr_weight(path, f, *p);
      continue;
    }
    p->csr.reset();
    if (!p->var.value().defined()) p->var.value() = Tensor(p->shape);
    from_named(path, f.find(p->name), p->name, p->var.value());
    const std::string mask_name = mask_key(p->name);
    if (const NamedTensor* m = f.find(mask_name)) {
      p->mask = Tensor(p->shape, DType::u8);
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
    if (f.metadata.count(kPruningRngKey)) parse_rng(path, f.metadata, kPruningRngKey, pruner->rng());
  }
  if (optimizer) {
    for (auto& [name, t] : optimizer->state())
      from_named(path, f.find(optimizer_key(name)), optimizer_key(name), *t);
    optimizer->set_steps(info.optimizer_steps);
    parse_rng(path, f.metadata, kDropoutRngKey, model.dropout_rng());
  }
  if (device != st::Device::cpu) {
    model.to(device);
    if (optimizer) optimizer->to(device);
  }
  return info;
}

}  // namespace st::experiment
