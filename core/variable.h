// core/variable.h — autograd: a Variable is a Tensor value, its gradient, and the Node that made it.
// A Node keeps what its backward needs and its inputs; backward() walks the graph in reverse
// topological order, iteratively (no recursion, so deep graphs cannot overflow the stack).
// Gradient contract: Node::backward adds into its inputs' grads — when an input has no grad yet the
// kernel writes it (=, no memset), otherwise it accumulates (+=). Parameter grads therefore
// accumulate across backward calls until zero_grad().
// A gradient lives on its value's device; accumulation (+=) runs there (kernels::axpy or cuda::axpy).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace st {

class Node;

struct VariableImpl {
  Tensor value;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  bool requires_grad = false;
};

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  Tensor& value() { return impl_->value; }
  const Shape& shape() const { return impl_->value.shape(); }
  const Tensor& grad() const { return impl_->grad; }
  Tensor& grad() { return impl_->grad; }
  bool has_grad() const { return impl_->grad.defined(); }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  VariableImpl* impl() const { return impl_.get(); }

  // Seeds d(self)/d(self) = 1 (self must hold one element) and back-propagates. The graph is freed
  // as it is consumed; leaves keep their grads.
  void backward();
  // Back-propagates a given output gradient `dout` (same shape as the value).
  void backward(const Tensor& dout);
  // Drops the gradient (the next backward writes it afresh).
  void zero_grad() { impl_->grad = Tensor(); }

 private:
  friend class Node;
  std::shared_ptr<VariableImpl> impl_;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // dout: the gradient of the output this node produced. Adds into inputs' grads.
  virtual void backward(const Tensor& dout) = 0;

  std::vector<Variable> inputs;

 protected:
  bool needs_grad(size_t i) const { return inputs[i].requires_grad(); }
  // The gradient slot of input i, allocated (uninitialized) if it was empty. `accumulate` tells the
  // kernel whether to add (+=) or to write (=).
  Tensor& grad_slot(size_t i, bool& accumulate);
  // Adds `g` into input i's grad; takes ownership of g's storage when the grad is empty.
  void accumulate_grad(size_t i, Tensor g);
};

// Wraps `out` in a Variable whose grad_fn is `node` (when any input requires grad and grad mode is on).
Variable make_result(Tensor out, std::shared_ptr<Node> node);

// Autograd recording switch (thread-local), e.g. for evaluation.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace st
