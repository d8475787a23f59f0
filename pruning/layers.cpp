#include "pruning/layers.h"

#include <cstring>


namespace st::pruning {

std::vector<PrunableLayer> prunable_layers(models::Model& model) {
  std::vector<PrunableLayer> out;
  Shape s = model.input_shape();
  const auto& layers = model.layers();
  // Per-sample shape at the output of the most recent weight layer's units, and the number of
  // features each unit has become after the layers since (pools keep channels, flatten spreads
  // each channel over H·W features).
  int last = -1;
  int64_t span = 1;
  for (size_t i = 0; i < layers.size(); ++i) {
    models::Module* m = layers[i].get();
    const Shape in = s;
    s = m->output_shape(in);
    auto* lin = dynamic_cast<models::Linear*>(m);
    auto* conv = dynamic_cast<models::Conv2d*>(m);
    if (lin || conv) {
      PrunableLayer L;
      L.name = m->name();
      L.layer_index = static_cast<int>(i);
      L.conv = conv != nullptr;
      L.weight = lin ? &lin->weight() : &conv->weight();
      L.bias = lin ? lin->bias() : conv->bias();
      const Shape& w = L.weight->shape;
      L.rows = w[0];
      L.cols = shape_numel(w) / L.rows;
      L.in_channels = w[1];
      L.area = L.cols / L.in_channels;
      L.dense_macs = m->macs(in);
      if (last >= 0) {
        out[last].next = static_cast<int>(out.size());
        out[last].span = span;
        ST_ASSERT(out[last].rows * span == L.in_channels, "unit span does not match the next layer");
      }
      last = static_cast<int>(out.size());
      span = 1;
      out.push_back(L);
    } else if (std::string(m->type()) == "flatten") {
      if (in.size() == 3) span *= in[1] * in[2];
    }
  }
  return out;
}

Tensor& ensure_mask(Parameter& p) {
  ST_ASSERT(p.dense(), "ensure_mask: ", p.name, " is not dense (masks belong to dense weights)");
  if (!p.mask.defined()) {
    p.mask = Tensor(p.shape, DType::u8);
    std::memset(p.mask.raw(), 1, p.mask.nbytes());
  }
  return p.mask;
}

void apply_mask(Parameter& p) {
  if (!p.mask.defined()) return;
  float* w = p.var.value().f32();
  const uint8_t* m = p.mask.u8();
  for (int64_t i = 0, n = p.mask.numel(); i < n; ++i)
    if (!m[i]) w[i] = 0.f;
}

int64_t count_kept(const Parameter& p) { return p.kept(); }

OptimizerState optimizer_state_by_param(Optimizer& opt) {
  OptimizerState out;
  for (auto& [name, t] : opt.state()) {
    const size_t dot = name.rfind('.');
    out[name.substr(0, dot)].push_back(t);
  }
  return out;
}

void set_mask(Parameter& p, const std::vector<uint8_t>& new_mask, const OptimizerState* state) {
  Tensor& mask = ensure_mask(p);
  ST_ASSERT(static_cast<int64_t>(new_mask.size()) == mask.numel(), "mask size");
  uint8_t* m = mask.u8();
  float* w = p.var.value().f32();
  std::vector<Tensor*> slots;
  if (state) {
    auto it = state->find(p.name);
    if (it != state->end()) slots = it->second;
  }
  for (int64_t i = 0, n = mask.numel(); i < n; ++i) {
    const bool reset = !new_mask[i] || !m[i];  // pruned now, or regrown (was pruned)
    if (reset) {
      w[i] = 0.f;
      for (Tensor* t : slots)
        if (t->defined()) t->f32()[i] = 0.f;
    }
    m[i] = new_mask[i] ? 1 : 0;
  }
  ++p.mask_version;  // the CSR switch rebuilds the layer's structure (pruning/csr_switch.h)
}

}  // namespace st::pruning
