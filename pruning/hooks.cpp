#include "pruning/hooks.h"

namespace st::pruning {

HookRunner::HookRunner(Pruner* pruner, CsrSwitch& csr, models::Model& model, Optimizer& optimizer, Device device)
    : pruner_(pruner), csr_(csr), model_(model), optimizer_(optimizer), device_(device) {}

std::vector<CsrSwitchEvent> HookRunner::start() {
  if (!pruner_) return {};
  return run_suspended(pruner_->plan_start());
}

std::vector<CsrSwitchEvent> HookRunner::epoch_begin(int epoch) {
  if (!pruner_) return {};
  return run_suspended(pruner_->plan_epoch_begin(epoch));
}

bool HookRunner::begin_step(int epoch, int64_t step) {
  step_ = pruner_ ? pruner_->plan_step(epoch, step) : Action{};
  if (step_ && step_.needs_dense()) csr_.suspend(true);
  return static_cast<bool>(step_);
}

std::vector<CsrSwitchEvent> HookRunner::end_step() {
  if (!step_) return {};
  run_on_host(step_);
  step_ = nullptr;
  csr_.suspend(false);
  return csr_.update();
}

std::vector<CsrSwitchEvent> HookRunner::epoch_end(int epoch) {
  if (!pruner_) return {};
  return run_suspended(pruner_->plan_epoch_end(epoch));
}

std::vector<CsrSwitchEvent> HookRunner::run_suspended(const Action& action) {
  if (action && action.needs_dense()) csr_.suspend(true);
  run_on_host(action);
  csr_.suspend(false);
  return csr_.update();
}

void HookRunner::run_on_host(const Action& action) {
  if (!action) return;
  if (device_ == Device::cpu) return action();
  model_.to(Device::cpu);
  optimizer_.to(Device::cpu);
  action();
  model_.to(device_);
  optimizer_.to(device_);
}

}  // namespace st::pruning
