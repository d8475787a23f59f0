#include "pruning/csr_switch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/csr_weight.h"
#include "core/ops.h"

namespace st::pruning {

std::string CsrSwitchEvent::message() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "[csr] %s: %s at sparsity %.1f%% (%s)", layer.c_str(),
                to_csr ? "dense -> csr" : "csr -> dense", 100 * sparsity, why.c_str());
  return buf;
}

CsrSwitch::CsrSwitch(CsrSwitchOptions options, models::Model& model)
    : options_(options), model_(model), layers_(prunable_layers(model)) {
  Shape s = model.input_shape();
  size_t next = 0;
  for (size_t i = 0; i < model.layers().size() && next < layers_.size(); ++i) {
    if (static_cast<int>(i) == layers_[next].layer_index) {
      input_shapes_.push_back(s);
      ++next;
    }
    s = model.layers()[i]->output_shape(s);
  }
  seen_version_.assign(layers_.size(), -1);
  csr_.assign(layers_.size(), false);
  for (size_t l = 0; l < layers_.size(); ++l) csr_[l] = layers_[l].weight->sparse();
}

std::vector<std::pair<std::string, std::string>> CsrSwitch::modes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t l = 0; l < layers_.size(); ++l) out.emplace_back(layers_[l].name, csr_[l] ? "csr" : "dense");
  return out;
}

void CsrSwitch::suspend(bool on) {
  suspended_ = on;
  if (on)
    for (const auto& L : layers_) to_dense(*L.weight);
}

void CsrSwitch::adopt() {
  for (size_t l = 0; l < layers_.size(); ++l) {
    seen_version_[l] = layers_[l].weight->mask_version;
    csr_[l] = layers_[l].weight->sparse();
  }
}

std::vector<CsrSwitchEvent> CsrSwitch::update() {
  std::vector<CsrSwitchEvent> events;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Parameter& p = *layers_[l].weight;
    if (seen_version_[l] != p.mask_version) {
      seen_version_[l] = p.mask_version;
      const double sparsity = 1.0 - static_cast<double>(p.kept()) / layers_[l].numel();
      std::string why;
      const bool want = options_.enabled && decide(l, sparsity, why);
      if (want != csr_[l]) events.push_back({layers_[l].name, want, sparsity, why});
      csr_[l] = want;
    }
    if (suspended_) continue;
    if (csr_[l])
      to_sparse(p);
    else
      to_dense(p);
  }
  return events;
}

bool CsrSwitch::decide(size_t l, double sparsity, std::string& why) {
  char buf[128];
  if (!options_.timed) {
    std::snprintf(buf, sizeof buf, "threshold %.2f", options_.threshold);
    why = buf;
    return sparsity > 0 && sparsity >= options_.threshold;
  }
  if (sparsity <= 0) {
    why = "auto: no sparsity";
    return false;
  }
  const std::pair<size_t, int> key{l, static_cast<int>(std::lround(sparsity * 100))};
  auto it = timed_choice_.find(key);
  if (it != timed_choice_.end()) {
    why = "auto: cached decision";
    return it->second;
  }
  const auto [dense_ms, csr_ms] = time_layer(l);
  std::snprintf(buf, sizeof buf, "auto: dense %.3f ms, csr %.3f ms", dense_ms, csr_ms);
  why = buf;
  return timed_choice_[key] = csr_ms < dense_ms;
}

std::pair<double, double> CsrSwitch::time_layer(size_t l) {
  const PrunableLayer& L = layers_[l];
  Parameter& p = *L.weight;
  Shape xs{options_.batch_size};
  for (int64_t d : input_shapes_[l]) xs.push_back(d);
  Rng rng(0x5eedULL + l);
  Tensor xt(xs);
  for (int64_t i = 0; i < xt.numel(); ++i) xt.f32()[i] = rng.uniform(-1.f, 1.f);
  // Both forms, one of them a temporary copy (O(numel)); Variables of their own, so the layer's
  // gradients are untouched.
  const Tensor dense = dense_value(p);
  const Device device = dense.device();  // timed where the layer runs
  xt = xt.to(device);
  Variable x(xt, /*requires_grad=*/true);
  Variable w(dense, true);
  Variable b = L.bias ? Variable(L.bias->var.value(), true) : Variable();
  auto csr = p.sparse() ? p.csr : make_csr_weight(dense, p.mask_data());
  Conv2dOptions copt;
  if (L.conv)
    copt = dynamic_cast<models::Conv2d*>(model_.layers()[L.layer_index].get())->options();
  auto run = [&](bool sparse) {
    Variable y = L.conv ? (sparse ? sparse_conv2d(x, csr, b, copt) : conv2d(x, w, b, copt))
                        : (sparse ? sparse_linear(x, csr, b) : linear(x, w, b));
    y.backward(Tensor::full(y.shape(), 1.f, device));
    x.zero_grad();
    w.zero_grad();
    csr->values.zero_grad();
    if (b.defined()) b.zero_grad();
  };
  auto best_ms = [&](bool sparse) {
    run(sparse);  // warm-up: primitives, allocator
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      device_synchronize(device);
      const auto t0 = std::chrono::steady_clock::now();
      run(sparse);
      device_synchronize(device);  // device kernels are asynchronous
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double dense_ms = best_ms(false), csr_ms = best_ms(true);
  return {dense_ms, csr_ms};
}

}  // namespace st::pruning
