#include "pruning/compact.h"

namespace st::pruning {

std::vector<std::vector<int64_t>> kept_units(models::Model& model) {
  const auto layers = prunable_layers(model);
  std::vector<std::vector<int64_t>> kept(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    const PrunableLayer& L = layers[l];
    const uint8_t* wm = L.weight->mask_data();
    const uint8_t* bm = L.bias ? L.bias->mask_data() : nullptr;
    for (int64_t r = 0; r < L.rows; ++r) {
      bool dead = wm != nullptr && l + 1 < layers.size();
      for (int64_t c = 0; c < L.cols && dead; ++c) dead = !wm[r * L.cols + c];
      if (dead && L.bias) dead = bm != nullptr && !bm[r];
      if (!dead) kept[l].push_back(r);
    }
    ST_CHECK(!kept[l].empty(), "export --compact: layer ", L.name, " has no unit left");
  }
  return kept;
}

std::vector<models::LayerSpec> compact_layer_specs(models::Model& model, const std::vector<models::LayerSpec>& specs,
                                                   const std::vector<std::vector<int64_t>>& kept) {
  const auto layers = prunable_layers(model);
  ST_ASSERT(specs.size() == model.layers().size(), "one spec per model layer");
  std::vector<models::LayerSpec> out = specs;
  for (size_t i = 0; i < out.size(); ++i) out[i].name = model.layers()[i]->name();
  for (size_t l = 0; l < layers.size(); ++l) out[layers[l].layer_index].out = static_cast<int>(kept[l].size());
  return out;
}

void copy_compact(models::Model& from, models::Model& to, const std::vector<std::vector<int64_t>>& kept) {
  const auto src = prunable_layers(from), dst = prunable_layers(to);
  ST_ASSERT(src.size() == dst.size(), "same layer structure");
  std::vector<int64_t> in_channels;  // kept input channels of the current layer
  for (size_t l = 0; l < src.size(); ++l) {
    const PrunableLayer &S = src[l], &D = dst[l];
    if (l == 0) {
      in_channels.resize(S.in_channels);
      for (int64_t c = 0; c < S.in_channels; ++c) in_channels[c] = c;
    }
    ST_ASSERT(D.rows == static_cast<int64_t>(kept[l].size()) &&
                  D.in_channels == static_cast<int64_t>(in_channels.size()), "compact shapes");
    const float* sw = S.weight->var.value().f32();
    float* dw = D.weight->var.value().f32();
    const uint8_t* sm = S.weight->mask_data();
    uint8_t* dm = sm ? ensure_mask(*D.weight).u8() : nullptr;
    for (int64_t i = 0; i < D.rows; ++i)
      for (size_t j = 0; j < in_channels.size(); ++j)
        for (int64_t k = 0; k < S.area; ++k) {
          const int64_t from_i = kept[l][i] * S.cols + in_channels[j] * S.area + k;
          const int64_t to_i = i * D.cols + static_cast<int64_t>(j) * D.area + k;
          dw[to_i] = sw[from_i];
          if (dm) dm[to_i] = sm[from_i];
        }
    if (S.bias) {
      for (int64_t i = 0; i < D.rows; ++i) D.bias->var.value().f32()[i] = S.bias->var.value().f32()[kept[l][i]];
    }
    // The next layer reads `span` input channels per kept unit.
    std::vector<int64_t> next;
    for (int64_t u : kept[l])
      for (int64_t s = 0; s < S.span; ++s) next.push_back(u * S.span + s);
    in_channels = std::move(next);
  }
}

}  // namespace st::pruning
