// core/optim.h on Device::cuda against the cpu: SGD (momentum, Nesterov, weight decay), Adam and
// AdamW over a few steps, for a dense parameter, a masked one (the mask changes between steps: the
// device copy follows mask_version) and a sparse one (the update at the nonzeros, compact state);
// the optimizer state moves between devices and follows a weight's form switches on the device; and
// a steady-state training step (forward, loss, backward, step, with a
// CSR layer) takes no new block from cudaMalloc after the second step.
#include <doctest/doctest.h>

#include "core/csr_weight.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/test_cuda_util.h"
#include "cuda/runtime.h"
#include "gradcheck.h"

using namespace st;
using test::check_close_any;
using test::random_mask;
using test::random_tensor;

namespace {

// Three parameters: dense, masked, CSR; the same on both devices.
struct Params {
  Parameter dense{"a.weight", random_tensor({7, 5}, 1), true};
  Parameter masked{"b.weight", random_tensor({6, 9}, 2), true};
  Parameter sparse{"c.weight", random_tensor({8, 11}, 3), true};
  explicit Params(Device d) {
    masked.mask = random_mask(masked.shape, 0.4, 4);
    sparse.mask = random_mask(sparse.shape, 0.7, 5);
    for (Parameter* p : {&masked, &sparse})
      for (int64_t i = 0; i < p->mask.numel(); ++i)
        if (!p->mask.u8()[i]) p->var.value().f32()[i] = 0.f;
    for (Parameter* p : all()) p->var.value() = p->var.value().to(d);
    to_sparse(sparse);  // on d: the CSR state is its only storage
  }
  std::vector<Parameter*> all() { return {&dense, &masked, &sparse}; }
  // Gradients for step `t` (the CSR one at the nonzeros), on the parameters' device.
  void set_grads(int t) {
    const Device d = dense.var.value().device();
    dense.var.grad() = random_tensor(dense.var.shape(), 10 + t).to(d);
    masked.var.grad() = random_tensor(masked.var.shape(), 20 + t).to(d);
    sparse.csr->values.grad() = random_tensor({sparse.csr->nnz()}, 30 + t).to(d);
  }
};

}  // namespace

TEST_CASE("cuda optimizer: SGD, Adam and AdamW steps match the cpu" * doctest::skip(test::no_cuda_device())) {
  for (OptimizerType type : {OptimizerType::sgd, OptimizerType::adam, OptimizerType::adamw}) {
    for (bool nesterov : {false, true}) {
      if (nesterov && type != OptimizerType::sgd) continue;
      CAPTURE(static_cast<int>(type));
      CAPTURE(nesterov);
      OptimizerOptions o;
      o.type = type;
      o.lr = 0.05f;
      o.nesterov = nesterov;
      o.weight_decay = 0.01f;
      Params cpu(Device::cpu), gpu(Device::cuda);
      Optimizer oc(cpu.all(), o), og(gpu.all(), o);
      for (auto& [name, t] : og.state()) CHECK(t->device() == Device::cuda);
      for (int t = 0; t < 4; ++t) {
        CAPTURE(t);
        if (t == 2) {  // a mask change between steps: pruned entries and their state to 0
          for (Params* ps : {&cpu, &gpu}) {
            Parameter& m = ps->masked;
            m.mask.u8()[3] = 0;
            m.mask.u8()[10] = 0;
            ++m.mask_version;
            Tensor w = m.var.value().to(Device::cpu);
            w.f32()[3] = w.f32()[10] = 0.f;
            m.var.value().copy_from(w);
          }
        }
        cpu.set_grads(t);
        gpu.set_grads(t);
        oc.step(o.lr);
        og.step(o.lr);
        for (size_t i = 0; i < 3; ++i)
          check_close_any(dense_value(*gpu.all()[i]), dense_value(*cpu.all()[i]), 1e-5);
        auto sc = oc.state(), sg = og.state();
        for (size_t k = 0; k < sc.size(); ++k) check_close_any(*sg[k].second, *sc[k].second, 1e-5);
        oc.zero_grad();
        og.zero_grad();
      }
      // Invariant 1 on the device: pruned weights are exactly 0.
      const Tensor w = gpu.masked.var.value().to(Device::cpu);
      for (int64_t i = 0; i < w.numel(); ++i)
        if (!gpu.masked.mask.u8()[i]) CHECK(w.f32()[i] == 0.f);
      // The CSR copies follow the device values (`values`, and Wt through perm).
      CsrWeight& c = *gpu.sparse.csr;
      download_csr_values(c);
      CHECK(c.values.value().to_vector() == c.w.values);
      for (int64_t k = 0; k < c.nnz(); ++k) CHECK(c.wt.values[k] == c.w.values[c.perm[k]]);
      // State moves to the host and back in place (the pruner holds pointers to it).
      Tensor* first = og.state()[0].second;
      og.to(Device::cpu);
      CHECK(og.state()[0].second == first);
      CHECK(first->device() == Device::cpu);
      og.to(Device::cuda);
      CHECK(first->device() == Device::cuda);
    }
  }
}

TEST_CASE("cuda optimizer: a sparse weight goes dense and back on the device, its state with it" *
          doctest::skip(test::no_cuda_device())) {
  OptimizerOptions o;
  o.type = OptimizerType::adam;
  Params cpu(Device::cpu), gpu(Device::cuda);
  Optimizer oc({&cpu.sparse}, o), og({&gpu.sparse}, o);
  for (int t = 0; t < 3; ++t) {
    for (Params* ps : {&cpu, &gpu}) {
      Parameter& p = ps->sparse;
      const Device d = ps == &cpu ? Device::cpu : Device::cuda;
      if (t == 1) {  // a dense step: masked dense gradient
        to_dense(p);
        CHECK(p.var.value().device() == d);
        Tensor g = random_tensor(p.shape, 50 + t);
        for (int64_t i = 0; i < g.numel(); ++i)
          if (!p.mask.u8()[i]) g.f32()[i] = 0.f;
        p.var.grad() = g.to(d);
      } else {
        if (p.dense()) to_sparse(p);
        CHECK(p.csr->device == d);
        p.csr->values.grad() = random_tensor({p.csr->nnz()}, 50 + t).to(d);
      }
    }
    oc.step(0.05f);
    og.step(0.05f);
    check_close_any(dense_value(gpu.sparse), dense_value(cpu.sparse), 1e-5);
    auto sc = oc.state(), sg = og.state();
    REQUIRE(sc.size() == sg.size());
    for (size_t k = 0; k < sc.size(); ++k) {
      CHECK(sg[k].second->device() == Device::cuda);
      check_close_any(*sg[k].second, *sc[k].second, 1e-5);
    }
    oc.zero_grad();
    og.zero_grad();
  }
  CHECK(gpu.sparse.sparse());
  CHECK(og.bytes() == 2 * 4 * gpu.sparse.csr->nnz());
}

TEST_CASE("cuda training step: no cudaMalloc after the second step" * doctest::skip(test::no_cuda_device())) {
  // A 20-16-10 MLP whose second layer runs in CSR, Adam, batch 8.
  Parameter w1("fc1.weight", random_tensor({16, 20}, 1).to(Device::cuda), true);
  Parameter b1("fc1.bias", random_tensor({16}, 2).to(Device::cuda), false);
  Parameter w2("fc2.weight", random_tensor({10, 16}, 3), true);
  Parameter b2("fc2.bias", random_tensor({10}, 4).to(Device::cuda), false);
  w1.mask = random_mask(w1.shape, 0.5, 5);  // masked dense: the optimizer's device mask
  w2.mask = random_mask(w2.shape, 0.8, 6);
  w2.var.value() = w2.var.value().to(Device::cuda);
  to_sparse(w2);
  OptimizerOptions o;
  o.type = OptimizerType::adam;
  o.lr = 1e-3f;
  Optimizer opt({&w1, &b1, &w2, &b2}, o);
  const Tensor x = random_tensor({8, 20}, 7).to(Device::cuda);
  std::vector<int32_t> lab{0, 1, 2, 3, 4, 5, 6, 7};
  const Tensor y = Tensor::from_vector({8}, lab);
  Rng rng(1);
  auto step = [&] {
    Variable h = relu(linear(Variable(x), w1.var, b1.var));
    h = dropout(h, 0.2f, true, rng);
    Variable logits = sparse_linear(h, w2.csr, b2.var);
    Variable loss = softmax_cross_entropy(logits, y.to(Device::cuda));
    CHECK(std::isfinite(loss.value().item()));
    count_correct(logits.value(), y);
    opt.zero_grad();
    loss.backward();
    opt.step(o.lr);
  };
  step();
  step();
  const auto after2 = cuda::device_allocator_stats();
  for (int i = 0; i < 3; ++i) step();
  const auto after5 = cuda::device_allocator_stats();
  CHECK(after5.device_mallocs == after2.device_mallocs);
  CHECK(after5.cached_reuses > after2.cached_reuses);
}
