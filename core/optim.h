// core/optim.h — optimizers that update parameters in place and know masks: SGD (momentum, Nesterov,
// weight decay), Adam and AdamW, with PyTorch's update rules. The learning rate is passed to step()
// so LR schedules stay separate objects (core/lr_schedule.h).
// State tensors are named "<param name>.<slot>" (momentum_buffer, exp_avg, exp_avg_sq): the
// checkpoint keys. Kernels: kernels/optim.h.
// State follows its parameter's representation (core/parameter.h): dense slots of the weight's
// shape for a dense parameter, compact slots (nnz, in the CsrWeight's order) for a sparse one, and
// nothing of the other form. When a parameter changes form or pattern, its state is converted at the
// next step() or state() (dense <-> compact by position, O(numel) once; pattern -> pattern by
// position), or carried over exactly by carry() when the caller knows where each nonzero came from
// (SET's regrowth: a regrown entry starts at 0 even where it was just dropped). state() is the only
// way in for other code (the pruner, checkpoints); its pointers are for use before the next step().
// Devices: the state lives on the parameters' device (to() moves it). On cuda a step runs
// cuda::sgd_update / adam_update (cuda/optim.h), for a sparse weight on its device mirror's values
// and the compact state; masks stay on the host (pruning edits them there) and the optimizer keeps a
// device copy of each, uploaded when Parameter::mask_version changes, never per step. A steady-state
// step allocates only from the caching device allocator. Form changes on cuda go through the host.
// Tests: tests/core/test_cuda_optim.cpp, tests/core/test_sparse_ops.cpp (CSR steps, state round trips).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/parameter.h"

namespace st {

enum class OptimizerType { sgd, adam, adamw };

struct OptimizerOptions {
  OptimizerType type = OptimizerType::sgd;
  float lr = 0.01f;
  float momentum = 0.9f, dampening = 0.f;
  bool nesterov = false;
  float weight_decay = 0.f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

class Optimizer {
 public:
  // Parameters may be unset (models::build_model allocate = false): their state is allocated when
  // they get a weight (the first step() or state() after).
  Optimizer(std::vector<Parameter*> params, OptimizerOptions opt);
  void step(float lr);
  void zero_grad();
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  const OptimizerOptions& options() const { return opt_; }
  // Named state tensors, in a stable order (for checkpoints), up to date. The pointers stay valid
  // across to(); read or write through them before the next step() (see the header comment).
  std::vector<std::pair<std::string, Tensor*>> state();
  // Moves the state to `device` in place (the parameters move with models::Model::to).
  void to(Device device);
  // p (one of this optimizer's parameters) has just been given a new pattern (p.csr) derived from
  // the one its state follows: new nonzero k takes the old state at source[k], or 0 where -1.
  void carry(const Parameter& p, const std::vector<int64_t>& source);
  // Bytes of optimizer state held.
  int64_t bytes() const;

 private:
  // The device copy of p's mask (null when p is dense), re-uploaded after a mask change.
  const uint8_t* device_mask(size_t i);
  // Converts param i's slots to its current form and pattern (a no-op when they follow it).
  void conform(size_t i);
  // Zero state in param i's current form, the first time it has a weight.
  void allocate(size_t i);
  size_t index_of(const Parameter& p) const;

  std::vector<Parameter*> params_;
  OptimizerOptions opt_;
  std::vector<Tensor> slot0_, slot1_;  // momentum | exp_avg, exp_avg_sq
  std::vector<std::shared_ptr<CsrWeight>> follows_;  // the pattern the slots are compact for; null = dense
  std::vector<bool> allocated_;  // false while the parameter is unset
  std::vector<Tensor> device_mask_;    // cuda copies of the host masks
  std::vector<int64_t> device_mask_version_;
  std::vector<const void*> device_mask_source_;  // the host mask storage it was copied from
  int64_t steps_ = 0;
};

}  // namespace st
