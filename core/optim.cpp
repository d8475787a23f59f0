#include "core/optim.h"

#include "core/csr_weight.h"
#include "cuda/optim.h"
#include "cuda/sparse.h"
#include "kernels/optim.h"
#include "kernels/sparse_optim.h"

namespace st {

Optimizer::Optimizer(std::vector<Parameter*> params, OptimizerOptions opt)
    : params_(std::move(params)), opt_(std::move(opt)) {
  ST_CHECK(opt_.type == "sgd" || opt_.type == "adam" || opt_.type == "adamw",
           "optimizer.type: expected \"sgd\", \"adam\" or \"adamw\", got \"", opt_.type, "\"");
  for (Parameter* p : params_) {
    const Shape& s = p->var.shape();
    const Device d = p->var.value().device();
    if (opt_.type == "sgd") {
      slot0_.push_back(opt_.momentum != 0.f ? Tensor::zeros(s, DType::f32, d) : Tensor());
      slot1_.emplace_back();
    } else {
      slot0_.push_back(Tensor::zeros(s, DType::f32, d));
      slot1_.push_back(Tensor::zeros(s, DType::f32, d));
    }
  }
  device_mask_.resize(params_.size());
  device_mask_version_.assign(params_.size(), -1);
  device_mask_source_.assign(params_.size(), nullptr);
}

void Optimizer::to(Device device) {
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
      float* w = p.var.value().f32();
      const float* g = c.values.grad().f32();
      if (opt_.type == "sgd") {
        kernels::sgd_update_at(c.nnz(), c.index.data(), w, g,
                               slot0_[i].defined() ? slot0_[i].f32() : nullptr, lr, opt_.momentum,
                               opt_.dampening, opt_.weight_decay, opt_.nesterov, first,
                               c.w.values.data());
      } else {
        kernels::adam_update_at(c.nnz(), c.index.data(), w, g, slot0_[i].f32(), slot1_[i].f32(), lr,
                                opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay,
                                opt_.type == "adamw", steps_, c.w.values.data());
      }
      sync_csr_copies(c);
      continue;
    }
    if (!p.var.has_grad()) continue;  // as PyTorch: no grad, no update
    Tensor& w = p.var.value();
    const float* g = p.var.grad().f32();
    if (opt_.type == "sgd") {
      kernels::sgd_update(w.numel(), w.f32(), g, slot0_[i].defined() ? slot0_[i].f32() : nullptr, lr,
                          opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, first,
                          p.mask_data());
    } else {
      kernels::adam_update(w.numel(), w.f32(), g, slot0_[i].f32(), slot1_[i].f32(), lr, opt_.beta1,
                           opt_.beta2, opt_.eps, opt_.weight_decay, opt_.type == "adamw", steps_,
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
    if (opt_.type == "sgd")
      cuda::sgd_update_at(c.nnz(), c.dindex, w, g, m0, lr, opt_.momentum, opt_.dampening,
                          opt_.weight_decay, opt_.nesterov, first, c.dw.values);
    else
      cuda::adam_update_at(c.nnz(), c.dindex, w, g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps,
                           opt_.weight_decay, opt_.type == "adamw", steps_, c.dw.values);
    sync_csr_copies(c);
    return;
  }
  if (!p.var.has_grad()) return;
  Tensor& w = p.var.value();
  const float* g = p.var.grad().cuda_f32();
  const uint8_t* mask = device_mask(i);
  if (opt_.type == "sgd")
    cuda::sgd_update(w.numel(), w.cuda_f32(), g, m0, lr, opt_.momentum, opt_.dampening,
                     opt_.weight_decay, opt_.nesterov, first, mask);
  else
    cuda::adam_update(w.numel(), w.cuda_f32(), g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps,
                      opt_.weight_decay, opt_.type == "adamw", steps_, mask);
  if (p.csr) refresh_csr_values(*p.csr, w);
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_) {
    p->var.zero_grad();
    if (p->csr) p->csr->values.zero_grad();
  }
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& n = params_[i]->name;
    if (opt_.type == "sgd") {
      if (slot0_[i].defined()) out.emplace_back(n + ".momentum_buffer", &slot0_[i]);
    } else {
      out.emplace_back(n + ".exp_avg", &slot0_[i]);
      out.emplace_back(n + ".exp_avg_sq", &slot1_[i]);
    }
  }
  return out;
}

}  // namespace st
