// core/optim.h — optimizers that update parameters in place and know masks: SGD (momentum, Nesterov,
// weight decay), Adam and AdamW, with PyTorch's update rules. The learning rate is passed to step()
// so LR schedules stay separate objects (core/lr_schedule.h).
// State tensors are named "<param name>.<slot>" (momentum_buffer, exp_avg, exp_avg_sq): the
// checkpoint keys. Kernels: kernels/optim.h.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/parameter.h"

namespace st {

struct OptimizerOptions {
  std::string type = "sgd";  // "sgd" | "adam" | "adamw"
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
  // Named state tensors, in a stable order (for checkpoints).
  std::vector<std::pair<std::string, Tensor*>> state();

 private:
  std::vector<Parameter*> params_;
  OptimizerOptions opt_;
  std::vector<Tensor> slot0_, slot1_;  // momentum | exp_avg, exp_avg_sq
  int64_t steps_ = 0;
};

}  // namespace st
