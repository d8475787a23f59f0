// pruning/hooks.h — runs the pruner's hooks inside a training loop: the one piece of pruning/ that
// knows both the Pruner and CSR execution. The pruner works on the host, and most of its Actions
// read and edit weights, gradients, masks and optimizer state densely, so around every hook that acts:
//   - unless the Action works on sparse weights (pruning/method.h on_sparse: SET), sparse weights
//     become dense (CsrSwitch::suspend): criteria run the model, RigL reads the dense gradient,
//     which CSR execution never forms; a step whose hook acts runs densely from its forward pass on;
//   - on a device, the model and optimizer state come to the host and go back after it (masks are
//     host tensors anyway). A hook that does not act is skipped and costs no transfer;
//   - afterwards the switch re-decides the layers whose masks changed (CsrSwitch::update); every
//     epoch-level hook ends with that update, whether or not it acted.
// Each call returns the CSR switches it caused, for the trainer to log. Without a pruner every call
// does nothing.
// Tests: tests/pruning/test_methods.cpp, tests/experiment/test_csr_trainer.cpp,
// tests/experiment/test_cuda_trainer.cpp, tests/experiment/test_pruning_trainer.cpp
#pragma once
#include <cstdint>
#include <vector>

#include "core/optim.h"
#include "models/model.h"
#include "pruning/csr_switch.h"
#include "pruning/pruner.h"

namespace st::pruning {

class HookRunner {
 public:
  // `pruner` may be null (a run without pruning). The model and its optimizer live on `device`.
  HookRunner(Pruner* pruner, CsrSwitch& csr, models::Model& model, Optimizer& optimizer, Device device);

  // Fresh runs only, before epoch 0.
  std::vector<CsrSwitchEvent> start();
  std::vector<CsrSwitchEvent> epoch_begin(int epoch);
  // Before the step's forward pass: plans the step's hook and, when it acts, makes the step run
  // densely. Returns whether it does.
  bool begin_step(int epoch, int64_t step);
  // After backward, before optimizer.step: runs the hook begin_step planned; a dense step then
  // returns to CSR execution.
  std::vector<CsrSwitchEvent> end_step();
  // After the epoch's last step.
  std::vector<CsrSwitchEvent> epoch_end(int epoch);

 private:
  std::vector<CsrSwitchEvent> run_suspended(const Action& action);
  void run_on_host(const Action& action);

  Pruner* pruner_;
  CsrSwitch& csr_;
  models::Model& model_;
  Optimizer& optimizer_;
  Device device_;
  Action step_;  // the current step's hook, from begin_step to end_step
};

}  // namespace st::pruning
