// core/optim.h — optimizers that update parameters in place and know masks: SGD (momentum, Nesterov,
// weight decay), Adam and AdamW, with PyTorch's update rules. The learning rate is passed to step()
// so LR schedules stay separate objects (core/lr_schedule.h).
// State tensors are named "<param name>.<slot>" (momentum_buffer, exp_avg, exp_avg_sq): the
// checkpoint keys. Kernels: kernels/optim.h.
// Devices: the state lives on the parameters' device (to() moves it). On cuda a step runs
// cuda::sgd_update / adam_update (cuda/optim.h) and, for a CSR layer, cuda::sgd_update_at /
// adam_update_at on the weight's device mirror; masks stay on the host (pruning edits them there)
// and the optimizer keeps a device copy of each, uploaded when Parameter::mask_version changes, never
// per step. A steady-state step allocates only from the caching device allocator.
// CSR steps on the CPU keep the state compact (nnz values in the CsrWeight's order, gathered from the
// dense slots when a new pattern first steps, O(nnz)): a weight-sized state buffer swept at the
// nonzeros cost ~30% of a 90%-sparse LeNet-300 step. The dense slots are brought up to date
// (scattered back) before anything else reads or writes them: state(), to(), a dense step of that
// parameter, or a step on a new pattern. Hence state() is the only way in for other code (the
// pruner, checkpoints), and its pointers are for use before the next step().
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

 private:
  // The device copy of p's mask (null when p is dense), re-uploaded after a mask change.
  const uint8_t* device_mask(size_t i);
  void step_cuda(size_t i, float lr, bool first);
  // The compact state of param i for CSR pattern c: gathered from the dense slots if it is not
  // already c's (scattering the previous pattern's back first).
  void use_compact(size_t i, const std::shared_ptr<CsrWeight>& c);
  // Scatters param i's compact state back into its dense slots and forgets it.
  void flush_compact(size_t i);
  void flush_all_compact();

  std::vector<Parameter*> params_;
  OptimizerOptions opt_;
  std::vector<Tensor> slot0_, slot1_;  // momentum | exp_avg, exp_avg_sq
  struct CompactState {
    std::shared_ptr<CsrWeight> owner;  // the pattern it follows (its index); null = none
    std::vector<float> s0, s1;         // slot0_ / slot1_ at owner's nonzeros, in CSR order
  };
  std::vector<CompactState> compact_;
  std::vector<Tensor> device_mask_;    // cuda copies of the host masks
  std::vector<int64_t> device_mask_version_;
  std::vector<const void*> device_mask_source_;  // the host mask storage it was copied from
  int64_t steps_ = 0;
};

}  // namespace st
