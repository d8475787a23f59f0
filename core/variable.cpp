#include "core/variable.h"

#include <unordered_set>

#include "cuda/dense.h"
#include "kernels/elementwise.h"

namespace st {

namespace {
thread_local bool g_grad_enabled = true;

// y += x on the tensors' device (gradient accumulation).
void add_into(const Tensor& x, Tensor& y) {
  ST_ASSERT(x.numel() == y.numel() && x.device() == y.device(), "gradient ", x.str(), " added into ",
            y.str());
  if (y.is_cuda())
    cuda::axpy(x.numel(), 1.f, x.cuda_f32(), y.cuda_f32());
  else
    kernels::axpy(x.numel(), 1.f, x.f32(), y.f32());
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Tensor& Node::grad_slot(size_t i, bool& accumulate) {
  VariableImpl* in = inputs[i].impl();
  accumulate = in->grad.defined();
  if (!accumulate) in->grad = Tensor(in->value.shape(), DType::f32, in->value.device());
  return in->grad;
}

void Node::accumulate_grad(size_t i, Tensor g) {
  VariableImpl* in = inputs[i].impl();
  if (!in->grad.defined()) {
    in->grad = g.reshape(in->value.shape());
  } else {
    ST_ASSERT(in->grad.numel() == g.numel(), "gradient size mismatch in accumulate");
    add_into(g, in->grad);
  }
}

Variable make_result(Tensor out, std::shared_ptr<Node> node) {
  Variable v(std::move(out));
  if (!g_grad_enabled) return v;
  bool any = false;
  for (const Variable& in : node->inputs) any = any || in.requires_grad();
  if (any) {
    v.impl()->requires_grad = true;
    v.impl()->grad_fn = std::move(node);
  }
  return v;
}

void Variable::backward() {
  ST_ASSERT(impl_ && impl_->value.numel() == 1, "backward() needs a scalar output");
  backward(Tensor::full(impl_->value.shape(), 1.0f, impl_->value.device()));
}

void Variable::backward(const Tensor& dout) {
  ST_ASSERT(impl_ && dout.numel() == impl_->value.numel() && dout.device() == impl_->value.device(),
            "backward: gradient ", dout.str(), " for value ", impl_->value.str());
  if (!impl_->requires_grad) return;
  if (!impl_->grad_fn) {  // a leaf: its gradient is the seed
    if (impl_->grad.defined())
      add_into(dout, impl_->grad);
    else
      impl_->grad = dout.clone();
    return;
  }
  impl_->grad = dout.clone();  // nodes may hand this storage on to their inputs

  // Iterative post-order DFS gives a topological order (inputs before the node's output).
  std::vector<VariableImpl*> order;
  std::unordered_set<VariableImpl*> seen;
  std::vector<std::pair<VariableImpl*, size_t>> stack{{impl_.get(), 0}};
  seen.insert(impl_.get());
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    Node* node = v->grad_fn.get();
    if (node && next < node->inputs.size()) {
      VariableImpl* in = node->inputs[next++].impl();
      if (in->requires_grad && in->grad_fn && seen.insert(in).second) stack.push_back({in, 0});
    } else {
      order.push_back(v);
      stack.pop_back();
    }
  }
  // Nodes are detached from their outputs as they are consumed and kept alive until the end, then
  // released output-first: no Variable is freed while `order` still points at it, and freeing a
  // long chain does not recurse.
  std::vector<std::shared_ptr<Node>> consumed;
  consumed.reserve(order.size());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VariableImpl* v = *it;
    std::shared_ptr<Node> node = std::move(v->grad_fn);
    if (v->grad.defined()) node->backward(v->grad);
    if (v != impl_.get()) v->grad = Tensor();  // intermediate grads are not kept
    consumed.push_back(std::move(node));
  }
  impl_->grad = Tensor();
  for (auto& n : consumed) n.reset();
}

}  // namespace st
