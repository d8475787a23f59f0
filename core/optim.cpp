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
    slot0_.emplace_back();
    slot1_.emplace_back();
    follows_.push_back(p->csr);
    allocated_.push_back(false);
    allocate(slot0_.size() - 1);  // an unset weight's state waits until it is set
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

size_t Optimizer::index_of(const Parameter& p) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i] == &p) return i;
  throw Error("optimizer: " + p.name + " is not one of its parameters");
}

void Optimizer::allocate(size_t i) {
  const Parameter& p = *params_[i];
  if (allocated_[i] || p.unset()) return;
  // Zeros in the parameter's current form: compact for a sparse weight.
  const Shape s = p.sparse() ? Shape{p.csr->nnz()} : p.shape;
  const Device d = p.sparse() ? p.csr->device : p.var.value().device();
  if (opt_.type == OptimizerType::sgd) {
    slot0_[i] = opt_.momentum != 0.f ? Tensor::zeros(s, DType::f32, d) : Tensor();
  } else {
    slot0_[i] = Tensor::zeros(s, DType::f32, d);
    slot1_[i] = Tensor::zeros(s, DType::f32, d);
  }
  follows_[i] = p.csr;
  allocated_[i] = true;
}

void Optimizer::conform(size_t i) {
  const Parameter& p = *params_[i];
  allocate(i);
  std::shared_ptr<CsrWeight>& follows = follows_[i];
  if (!allocated_[i] || follows == p.csr) return;
  for (Tensor* slot : {&slot0_[i], &slot1_[i]}) {
    if (!slot->defined()) continue;
    const Device device = slot->device();
    const Tensor from = slot->to(Device::cpu);
    Tensor to;
    if (!follows) {  // dense -> compact
      to = Tensor({p.csr->nnz()});
      gather_at_pattern(p.csr->w, from.f32(), to.f32());
    } else if (!p.csr) {  // compact -> dense
      to = Tensor::zeros(p.shape);
      scatter_at_pattern(follows->w, from.f32(), to.f32());
    } else {  // pattern -> pattern
      to = Tensor({p.csr->nnz()});
      carry_by_position(follows->w, from.f32(), p.csr->w, to.f32());
    }
    *slot = to.to(device);
  }
  follows = p.csr;
}

void Optimizer::carry(const Parameter& p, const std::vector<int64_t>& source) {
  const size_t i = index_of(p);
  ST_ASSERT(p.csr && follows_[i] && static_cast<int64_t>(source.size()) == p.csr->nnz(),
            "optimizer carry: ", p.name, " needs compact state and a source per new nonzero");
  const int64_t old_n = follows_[i]->nnz();
  for (Tensor* slot : {&slot0_[i], &slot1_[i]}) {
    if (!slot->defined()) continue;
    const Device device = slot->device();
    const Tensor from = slot->to(Device::cpu);
    Tensor to({p.csr->nnz()});
    for (size_t k = 0; k < source.size(); ++k) {
      ST_ASSERT(source[k] < old_n, "optimizer carry: source out of range");
      to.f32()[k] = source[k] >= 0 ? from.f32()[source[k]] : 0.f;
    }
    *slot = to.to(device);
  }
  follows_[i] = p.csr;
}

int64_t Optimizer::bytes() const {
  int64_t b = 0;
  for (auto* slots : {&slot0_, &slot1_})
    for (const Tensor& t : *slots)
      if (t.defined()) b += static_cast<int64_t>(t.nbytes());
  return b;
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
    conform(i);
    if (p.unset()) continue;
    const bool on_cuda = p.sparse() ? p.csr->device == Device::cuda : p.var.value().is_cuda();
    auto data = [on_cuda](Tensor& t) { return on_cuda ? t.cuda_f32() : t.f32(); };
    // A sparse weight: W's values, the gradient and the compact state are all nnz arrays in CSR
    // order, so the dense update kernel runs on them as they are. No gradient: no update (as PyTorch).
    int64_t n = 0;
    float* w = nullptr;
    const float* g = nullptr;
    const uint8_t* mask = nullptr;
    if (p.sparse()) {
      if (!p.csr->values.has_grad()) continue;
      n = p.csr->nnz();
      w = on_cuda ? p.csr->dw.values : p.csr->w.values.data();
      g = data(p.csr->values.grad());
    } else {
      if (!p.var.has_grad()) continue;
      n = p.var.value().numel();
      w = data(p.var.value());
      g = data(p.var.grad());
      mask = on_cuda ? device_mask(i) : p.mask_data();
    }
    float* m0 = slot0_[i].defined() ? data(slot0_[i]) : nullptr;
    float* m1 = slot1_[i].defined() ? data(slot1_[i]) : nullptr;
    const bool decoupled = opt_.type == OptimizerType::adamw;
    if (opt_.type == OptimizerType::sgd) {
      if (on_cuda)
        cuda::sgd_update(n, w, g, m0, lr, opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, first, mask);
      else
        kernels::sgd_update(n, w, g, m0, lr, opt_.momentum, opt_.dampening, opt_.weight_decay, opt_.nesterov, first,
                            mask);
    } else if (on_cuda) {
      cuda::adam_update(n, w, g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, decoupled, steps_, mask);
    } else {
      kernels::adam_update(n, w, g, m0, m1, lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, decoupled, steps_,
                           mask);
    }
    if (p.sparse()) sync_csr_copies(*p.csr);
  }
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_) {
    p->var.zero_grad();
    if (p->csr) p->csr->values.zero_grad();
  }
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state() {
  for (size_t i = 0; i < params_.size(); ++i) conform(i);  // the slots follow each parameter's form
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!allocated_[i]) continue;  // an unset weight has no state yet
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
