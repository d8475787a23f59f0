#include "experiment/finite.h"

#include "core/check.h"
#include "core/csr_weight.h"
#include "kernels/elementwise.h"

namespace st::experiment {

namespace {

// The values an optimizer step wrote: a sparse weight's nonzeros, the dense tensor otherwise.
Tensor stepped_values(const Parameter& p) {
  const Variable& v = p.sparse() ? p.csr->values : p.var;
  return v.value().defined() ? v.value().to(Device::cpu) : Tensor();
}

Tensor stepped_grad(const Parameter& p) {
  const Variable& v = p.sparse() ? p.csr->values : p.var;
  return v.grad().defined() ? v.grad().to(Device::cpu) : Tensor();
}

int64_t first_non_finite_in(const Tensor& t) {
  return t.defined() ? kernels::first_non_finite(t.numel(), t.f32()) : -1;
}

}  // namespace

bool parameters_finite(const std::vector<Parameter*>& params) {
  for (const Parameter* p : params)
    if (first_non_finite_in(stepped_values(*p)) >= 0) return false;
  return true;
}

void check_parameters_finite(const std::vector<Parameter*>& params, const std::string& when) {
  for (const Parameter* p : params) {
    const Tensor values = stepped_values(*p);
    const int64_t i = first_non_finite_in(values);
    if (i < 0) continue;
    const bool bad_grad = first_non_finite_in(stepped_grad(*p)) >= 0;
    const bool csr = p->sparse();
    throw Error(detail::concat("training diverged: parameter \"", p->name, "\" is ", values.f32()[i], " at ",
                               csr ? "nonzero " : "index ", i, bad_grad ? " (its gradient is non-finite too)" : "",
                               " ", when, " (lower optimizer.lr, or add lr_schedule.warmup_epochs)"));
  }
}

}  // namespace st::experiment
