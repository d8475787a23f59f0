#include "core/optim.h"

#include "core/csr_weight.h"
#include "cuda/optim.h"
#include "cuda/sparse.h"
#include "kernels/optim.h"

namespace st {

Optimizer::Optimizer(std::vector<Parameter*> params, OptimizerOptions opt)
    : params_(std::move(params)), opt_(std::move(opt)) {
  ST_CHECK(opt_.type == OptimizerType::sgd || opt_.type == OptimizerType::adam || opt_.type == OptimizerType::adamw,
           "optimizer.type: not an OptimizerType (", static_cast<int>(opt_.type), ")");
  for (Parameter* p : params_) {
    const Shape& s = p->var.shape();
    const Device d = p->var.value().device();
    if (opt_.type == OptimizerType::sgd) {
      slot0_.push_back(opt_.momentum != 0.f ? Tensor::zeros(s, DType::f32, d) : Tensor());
      slot1_.emplace_back();
    } else {
      slot0_.push_back(Tensor::zeros(s, DType::f32, d));
      slot1_.push_back(Tensor::zeros(s, DType::f32, d));
    }
  }
  compact_.resize(params_.size());
  device_mask_.resize(params_.size());
  device_mask_version_.assign(params_.size(), -1);
  device_mask_source_.assign(params_.size(), nullptr);
}

void Optimizer::to(Device device) {
  flush_all_compact();
  for (auto* slots : {&slot0_, &slot1_})
    for (Tensor& t : *slots) t = t.to(device);
  // The device masks are kept: a pruner hook's round trip to the host that changes no mask must
  // not cost an upload (they are refreshed by mask_version).
}

const uint8_t* Optimizer::device_mask(size_t i) {
  const Parameter& p = *params_[i];
  if (!p.mask.defined()) return nullptr;
  ST_ASSERT(p.mask.device() == Device::cpu, "masks live on the host");
  if (device_mask_version_[i] != p.mask_version || device_mask_source_[i] != p.mask.raw() ||
      !device_mask_[i].defined()) {
    device_mask_[i] = p.mask.to(Device::cuda);
    device_mask_version_[i] = p.mask_version;
    device_mask_source_[i] = p.mask.raw();
  }
  return device_mask_[i].cuda_u8();
}

void Optimizer::use_compact(size_t i, const std::shared_ptr<CsrWeight>& c) {
  CompactState& cs = compact_[i];
  if (cs.owner == c) return;
  flush_compact(i);
  const int64_t n = c->nnz();
  const int64_t* idx = c->index.data();
  for (auto [slot, dst] : {std::pair{&slot0_[i], &cs.s0}, std::pair{&slot1_[i], &cs.s1}}) {
    if (!slot->defined()) {
      dst->clear();
      continue;
    }
    dst->resize(static_cast<size_t>(n));
    kernels::gather_at(n, idx, slot->f32(), dst->data());
  }
  cs.owner = c;
}

void Optimizer::flush_compact(size_t i) {
  CompactState& cs = compact_[i];
  if (!cs.owner) return;
  const int64_t n = cs.owner->nnz();
  const int64_t* idx = cs.owner->index.data();
  for (auto [slot, src] : {std::pair{&slot0_[i], &cs.s0}, std::pair{&slot1_[i], &cs.s1}}) {
    if (slot->defined()) kernels::scatter_at(n, idx, src->data(), slot->f32());
  }
  cs.owner.reset();
}

void Optimizer::flush_all_compact() {
  for (size_t i = 0; i < params_.size(); ++i) flush_compact(i);
}

void Optimizer::step(float lr) {
  const bool first = steps_ == 0;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (p.var.value().is_cuda()) {
      step_cuda(i, lr, first);
      continue;
    }
    if (p.csr && p.csr->values.has_grad()) {  // a CSR step: update at the nonzeros only
      CsrWeight& c = *p.csr;
      ST_ASSERT(!p.var.has_grad(), "a weight has both a dense and a CSR gradient");
      // W's values, the gradient and the compact state are all nnz arrays in CSR order: the dense
      // update kernel runs on them as they are. The dense weight is written back lazily
      // (core/csr_weight.h, sync_dense_weight).
      use_compact(i, p.csr);
      CompactState& cs = compact_[i];
      float* v = c.w.values.data();
      const float* g = c.values.grad().f32();
      if (opt_.type == OptimizerType::sgd) {
        kernels::sgd_update(c.nnz(), v, g, slot0_[i].defined() ? cs.s0.data() : nullptr, lr,
                            opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, first,
                            nullptr);
      } else {
        kernels::adam_update(c.nnz(), v, g, cs.s0.data(), cs.s1.data(), lr, opt_.beta1, opt_.beta2,
                             opt_.eps, opt_.weight_decay, opt_.type == OptimizerType::adamw, steps_, nullptr);
      }
      c.dense_stale = true;
      sync_csr_copies(c);
      continue;
    }
    if (!p.var.has_grad()) continue;  // as PyTorch: no grad, no update
    flush_compact(i);                 // a dense step reads the dense slots
    sync_dense_weight(p);             // and the dense weight
    Tensor& w = p.var.value();
    const float* g = p.var.grad().f32();
    if (opt_.type == OptimizerType::sgd) {
      kernels::sgd_update(w.numel(), w.f32(), g, slot0_[i].defined() ? slot0_[i].f32() : nullptr, lr,
                          opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, first,
                          p.mask_data());
    } else {
      kernels::adam_update(w.numel(), w.f32(), g, slot0_[i].f32(), slot1_[i].f32(), lr, opt_.beta1,
                           opt_.beta2, opt_.eps, opt_.weight_decay, opt_.type == OptimizerType::adamw, steps_,
                           p.mask_data());
    }
    if (p.csr) refresh_csr_values(*p.csr, w.f32());  // a dense step of a CSR layer
  }
}

// The cpu step's logic with the device kernels.
void Optimizer::step_cuda(size_t i, float lr, bool first) {
  Parameter& p = *params_[i];
  float* m0 = slot0_[i].defined() ? slot0_[i].cuda_f32() : nullptr;
  float* m1 = slot1_[i].defined() ? slot1_[i].cuda_f32() : nullptr;
  if (p.csr && p.csr->values.has_grad()) {
    CsrWeight& c = *p.csr;
    ST_ASSERT(!p.var.has_grad(), "a weight has both a dense and a CSR gradient");
    ST_ASSERT(c.device == Device::cuda, "a cuda weight with a cpu CSR state");
    float* w = p.var.value().cuda_f32();
    const float* g = c.values.grad().cuda_f32();
    if (opt_.type == OptimizerType::sgd)
      cuda::sgd_update_at(c.nnz(), c.dindex, w, g, m0, lr, opt_.momentum, opt_.dampening,
                          opt_.weight_decay, opt_.nesterov, first, c.dw.values);
    else
      cuda::adam_update_at(c.nnz(), c.dindex, w, g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps,
                           opt_.weight_decay, opt_.type == OptimizerType::adamw, steps_, c.dw.values);
    sync_csr_copies(c);
    return;
  }
  if (!p.var.has_grad()) return;
  Tensor& w = p.var.value();
  const float* g = p.var.grad().cuda_f32();
  const uint8_t* mask = device_mask(i);
  if (opt_.type == OptimizerType::sgd)
    cuda::sgd_update(w.numel(), w.cuda_f32(), g, m0, lr, opt_.momentum, opt_.dampening,
                     opt_.weight_decay, opt_.nesterov, first, mask);
  else
    cuda::adam_update(w.numel(), w.cuda_f32(), g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps,
                      opt_.weight_decay, opt_.type == OptimizerType::adamw, steps_, mask);
  if (p.csr) refresh_csr_values(*p.csr, w);
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_) {
    p->var.zero_grad();
    if (p->csr) p->csr->values.zero_grad();
  }
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state() {
  flush_all_compact();  // the caller may read or write the slots: they must be current, and stay so
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i]->name;
    if (opt_.type == OptimizerType::sgd) {
      if (slot0_[i].defined()) out.emplace_back(n + ".momentum_buffer", &slot0_[i]);
    } else {
      out.emplace_back(n + ".exp_avg", &slot0_[i]);
      out.emplace_back(n + ".exp_avg_sq", &slot1_[i]);
    }
  }
  return out;
}

}  // namespace st
