// Every op of core/ops.h on Device::cuda against the same op on Device::cpu: forward values and all
// input gradients, two graphs back to back so the second backward accumulates (+=) into the grads
// the first wrote. Dense (linear, conv2d with stride/padding), CSR (sparse_linear with and without
// its relu, sparse_conv2d at sparsity 0 / 0.6 / 1, with and without bias), pooling, relu, dropout
// (the device's counter-based mask), flatten, add (a value used twice in one graph),
// softmax-cross-entropy, distillation loss, count_correct; mixed devices and cuSPARSE under the
// emulator fail clearly.
// Tiny shapes: under the emulator every GPU thread is a fiber.
#include <doctest/doctest.h>

#include <functional>

#include "core/csr_weight.h"
#include "core/ops.h"
#include "core/test_cuda_util.h"
#include "cuda/cusparse.h"
#include "cuda/dense.h"
#include "gradcheck.h"

using namespace st;
using test::check_close_any;
using test::random_mask;
using test::random_tensor;

namespace {

using OpFn = std::function<Variable(std::vector<Variable>&)>;

struct Run {
  std::vector<Variable> in;
  std::vector<Tensor> out;
};

// f on copies of `inputs` placed on `device`, twice, each output back-propagated with its own
// random gradient.
Run run_on(Device device, const OpFn& f, const std::vector<Tensor>& inputs,
           const std::vector<bool>& needs) {
  Run r;
  for (size_t i = 0; i < inputs.size(); ++i)
    r.in.emplace_back(inputs[i].to(device).clone(), needs.empty() || needs[i]);
  for (int rep = 0; rep < 2; ++rep) {
    Variable y = f(r.in);
    r.out.push_back(y.value());
    if (y.requires_grad()) y.backward(random_tensor(y.shape(), 100 + rep).to(device));
  }
  return r;
}

void compare_devices(const OpFn& f, const std::vector<Tensor>& inputs, double tol = 1e-4,
                     const std::vector<bool>& needs = {}) {
  Run cpu = run_on(Device::cpu, f, inputs, needs);
  Run gpu = run_on(Device::cuda, f, inputs, needs);
  for (size_t k = 0; k < cpu.out.size(); ++k) {
    CAPTURE(k);
    CHECK(gpu.out[k].device() == Device::cuda);
    check_close_any(gpu.out[k], cpu.out[k], tol);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    CAPTURE(i);
    REQUIRE(cpu.in[i].has_grad() == gpu.in[i].has_grad());
    if (!cpu.in[i].has_grad()) continue;
    CHECK(gpu.in[i].grad().device() == Device::cuda);
    check_close_any(gpu.in[i].grad(), cpu.in[i].grad(), tol);
  }
}

Tensor labels_for(int B, int C, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(B);
  for (auto& l : v) l = static_cast<int32_t>(rng.below(C));
  return Tensor::from_vector({B}, v);
}

}  // namespace

TEST_CASE("cuda ops: linear and conv2d match the cpu" * doctest::skip(test::no_cuda_device())) {
  for (bool bias : {true, false}) {
    CAPTURE(bias);
    std::vector<Tensor> in{random_tensor({5, 20}, 1), random_tensor({16, 20}, 2)};
    if (bias) in.push_back(random_tensor({16}, 3));
    compare_devices([&](auto& v) { return linear(v[0], v[1], bias ? v[2] : Variable()); }, in);
    // Only some inputs need grad (x frozen: dW and db alone; bias frozen: the scratch path).
    compare_devices([&](auto& v) { return linear(v[0], v[1], bias ? v[2] : Variable()); }, in, 1e-4,
                    {false, true, false});
  }
  struct Case {
    Shape x, w;
    Conv2dOptions o;
  };
  Conv2dOptions s2p1;
  s2p1.stride_h = s2p1.stride_w = 2;
  s2p1.pad_h = s2p1.pad_w = 1;
  for (const Case& c : {Case{{2, 3, 8, 8}, {5, 3, 3, 3}, Conv2dOptions{}},
                        Case{{3, 2, 7, 6}, {4, 2, 3, 2}, s2p1}}) {
    for (bool bias : {true, false}) {
      CAPTURE(bias);
      std::vector<Tensor> in{random_tensor(c.x, 4), random_tensor(c.w, 5)};
      if (bias) in.push_back(random_tensor({c.w[0]}, 6));
      compare_devices([&](auto& v) { return conv2d(v[0], v[1], bias ? v[2] : Variable(), c.o); }, in);
      if (bias)  // weight frozen, bias trained: the weight grad goes to scratch
        compare_devices([&](auto& v) { return conv2d(v[0], v[1], v[2], c.o); }, in, 1e-4,
                        {true, false, true});
    }
  }
}

TEST_CASE("cuda ops: pooling, relu, flatten, add" * doctest::skip(test::no_cuda_device())) {
  const Tensor x = random_tensor({2, 3, 7, 8}, 7);
  Pool2dOptions p;
  compare_devices([&](auto& v) { return max_pool2d(v[0], p); }, {x});
  compare_devices([&](auto& v) { return avg_pool2d(v[0], p); }, {x});
  Pool2dOptions q;
  q.kernel_h = q.kernel_w = 3;
  q.stride_h = q.stride_w = 2;
  q.pad_h = q.pad_w = 1;
  compare_devices([&](auto& v) { return max_pool2d(v[0], q); }, {x});
  compare_devices([&](auto& v) { return avg_pool2d(v[0], q); }, {x});
  compare_devices([&](auto& v) { return relu(v[0]); }, {x});
  compare_devices([&](auto& v) { return flatten(v[0]); }, {x});
  // x reaches the output twice: its grad is written by one path and accumulated by the other.
  compare_devices([&](auto& v) { return add(relu(v[0]), v[0]); }, {x});
  compare_devices([&](auto& v) { return add(v[0], v[1]); }, {x, random_tensor(x.shape(), 8)});
  // A small chain: conv -> pool -> flatten -> linear.
  compare_devices(
      [&](auto& v) {
        Variable h = relu(conv2d(v[0], v[1], v[2], Conv2dOptions{}));
        return linear(flatten(max_pool2d(h, p)), v[3], v[4]);
      },
      {random_tensor({4, 1, 8, 8}, 9), random_tensor({3, 1, 3, 3}, 10), random_tensor({3}, 11),
       random_tensor({10, 27}, 12), random_tensor({10}, 13)});
}

TEST_CASE("cuda ops: losses and count_correct" * doctest::skip(test::no_cuda_device())) {
  const int B = 6, C = 10;
  const Tensor labels = labels_for(B, C, 3);
  const Tensor logits = random_tensor({B, C}, 14, -3.f, 3.f);
  // Labels on either device (the trainer passes device labels).
  compare_devices([&](auto& v) { return softmax_cross_entropy(v[0], labels.to(v[0].value().device())); },
                  {logits});
  compare_devices([&](auto& v) { return softmax_cross_entropy(v[0], labels); }, {logits});
  const Tensor teacher = random_tensor({B, C}, 15, -3.f, 3.f);
  compare_devices(
      [&](auto& v) {
        const Device d = v[0].value().device();
        return distillation_loss(v[0], labels.to(d), teacher.to(d), 2.f, 0.7f);
      },
      {logits});
  // Ties go to the first maximum on both devices.
  Tensor tied = logits.clone();
  tied.f32()[3] = tied.f32()[7] = 10.f;
  for (const Tensor& l : {logits, tied}) {
    const int64_t want = count_correct(l, labels);
    CHECK(count_correct(l.to(Device::cuda), labels) == want);
    CHECK(count_correct(l.to(Device::cuda), labels.to(Device::cuda)) == want);
  }
}

TEST_CASE("cuda ops: dropout uses the device's counter-based mask, seeded from the model's stream" *
          doctest::skip(test::no_cuda_device())) {
  const float p = 0.3f;
  const Tensor xh = random_tensor({4, 33}, 16);
  Rng rng(42), twin(42);
  Variable x(xh.to(Device::cuda), true);
  Variable y = dropout(x, p, /*training=*/true, rng);
  const Tensor dy = random_tensor(y.shape(), 17);
  y.backward(dy.to(Device::cuda));
  const uint64_t seed = twin.next_u64();  // one draw per dropout call
  CHECK(rng.state() == twin.state());
  const std::vector<float> yv = y.value().to_vector(), gv = x.grad().to_vector();
  int kept = 0;
  for (int64_t i = 0; i < xh.numel(); ++i) {
    const bool keep = cuda::dropout_uniform(seed, static_cast<uint64_t>(i)) >= p;
    kept += keep;
    CHECK(yv[i] == (keep ? xh.f32()[i] * (1.f / (1.f - p)) : 0.f));
    CHECK(gv[i] == (keep ? dy.f32()[i] * (1.f / (1.f - p)) : 0.f));
  }
  CHECK(kept > 60);  // about 92 of 132
  CHECK(kept < 125);
  // Identity in eval mode, with no draw.
  Variable e = dropout(x, p, /*training=*/false, rng);
  CHECK(e.value().same_storage(x.value()));
  CHECK(rng.state() == twin.state());
}

TEST_CASE("cuda ops: CSR layers match the cpu CSR layers" * doctest::skip(test::no_cuda_device())) {
  Conv2dOptions s2p1;
  s2p1.stride_h = s2p1.stride_w = 2;
  s2p1.pad_h = s2p1.pad_w = 1;
  for (double sparsity : {0.0, 0.6, 1.0}) {
    for (bool bias : {true, false}) {
      for (int kind = 0; kind < 3; ++kind) {  // linear, conv, linear with its relu
        const bool conv = kind == 1, relu = kind == 2;
        CAPTURE(sparsity);
        CAPTURE(bias);
        CAPTURE(kind);
        const Shape xs = conv ? Shape{3, 2, 7, 6} : Shape{5, 20};
        const Shape ws = conv ? Shape{4, 2, 3, 3} : Shape{16, 20};
        const Tensor mask = random_mask(ws, sparsity, 21);
        Tensor w = random_tensor(ws, 22);
        for (int64_t i = 0; i < w.numel(); ++i)
          if (!mask.u8()[i]) w.f32()[i] = 0.f;
        const Tensor xh = random_tensor(xs, 23), bh = random_tensor({ws[0]}, 24);
        struct Side {
          std::shared_ptr<CsrWeight> csr;
          Variable x, b;
          std::vector<Tensor> y;
        };
        auto run = [&](Device d) {
          Side s;
          s.csr = make_csr_weight(w.to(d), mask.u8());
          CHECK(s.csr->device == d);
          CHECK(s.csr->values.value().device() == d);
          s.x = Variable(xh.to(d), true);
          s.b = bias ? Variable(bh.to(d), true) : Variable();
          for (int rep = 0; rep < 2; ++rep) {  // the second backward accumulates
            Variable y = conv ? sparse_conv2d(s.x, s.csr, s.b, s2p1) : sparse_linear(s.x, s.csr, s.b, relu);
            s.y.push_back(y.value());
            y.backward(random_tensor(y.shape(), 30 + rep).to(d));
          }
          return s;
        };
        Side cpu = run(Device::cpu), gpu = run(Device::cuda);
        for (int rep = 0; rep < 2; ++rep) check_close_any(gpu.y[rep], cpu.y[rep]);
        check_close_any(gpu.x.grad(), cpu.x.grad());
        if (cpu.csr->nnz() > 0) check_close_any(gpu.csr->values.grad(), cpu.csr->values.grad());
        if (bias) check_close_any(gpu.b.grad(), cpu.b.grad());
        // The device mirror holds the same values as the host structure.
        CHECK(gpu.csr->values.value().to_vector() == cpu.csr->values.value().to_vector());
      }
    }
  }
}

TEST_CASE("cuda ops: a CSR weight moves between devices with its values" *
          doctest::skip(test::no_cuda_device())) {
  const Tensor mask = random_mask({9, 13}, 0.5, 31);
  Tensor w = random_tensor({9, 13}, 32);
  auto c = make_csr_weight(w, mask.u8());
  const std::vector<float> host_values = c->w.values;
  move_csr_weight(*c, Device::cuda);
  CHECK(c->device == Device::cuda);
  CHECK(c->dw.nnz == c->nnz());
  CHECK(c->values.value().to_vector() == host_values);
  // New values written on the device (as the optimizer does): Wt and `values` follow, and the host
  // copy after a download.
  Tensor w2 = random_tensor({9, 13}, 33);
  auto ref = make_csr_weight(w2, mask.u8());
  cuda::copy_h2d(c->dw.values, ref->w.values.data(), ref->w.values.size() * sizeof(float));
  sync_csr_copies(*c);
  download_csr_values(*c);
  CHECK(c->w.values == ref->w.values);
  CHECK(c->wt.values == ref->wt.values);
  move_csr_weight(*c, Device::cpu);
  CHECK(c->device == Device::cpu);
  CHECK(c->values.value().to_vector() == ref->values.value().to_vector());
  CHECK(c->dw.values == nullptr);
  // A step on the cpu leaves Wt's values to be refreshed when read; a move to the device uploads
  // them current.
  std::copy(host_values.begin(), host_values.end(), c->w.values.begin());
  sync_csr_copies(*c);
  move_csr_weight(*c, Device::cuda);
  std::vector<float> wt_device(static_cast<size_t>(c->nnz()));
  cuda::copy_d2h(wt_device.data(), c->dwt.values, wt_device.size() * sizeof(float));
  for (int64_t k = 0; k < c->nnz(); ++k) CHECK(wt_device[k] == host_values[c->perm[k]]);
}

TEST_CASE("cuda ops: mixed devices and cuSPARSE without a GPU fail clearly" *
          doctest::skip(test::no_cuda_device())) {
  Variable x(random_tensor({2, 4}, 1)), w(random_tensor({3, 4}, 2).to(Device::cuda));
  CHECK_THROWS_WITH_AS(linear(x, w, Variable()), doctest::Contains("different devices"), Error);
  auto csr = make_csr_weight(random_tensor({3, 4}, 2), nullptr);
  CHECK_THROWS_WITH_AS(sparse_linear(Variable(x.value().to(Device::cuda)), csr, Variable()),
                       doctest::Contains("sparse_linear"), Error);
  if (!cuda::cusparse::available()) {
    auto dcsr = make_csr_weight(random_tensor({3, 4}, 2).to(Device::cuda), nullptr);
    set_sparse_impl(SparseImpl::cusparse);
    CHECK_THROWS_WITH(sparse_linear(Variable(x.value().to(Device::cuda)), dcsr, Variable()),
                      doctest::Contains("cuSPARSE needs a real GPU"));
    set_sparse_impl(SparseImpl::native);
  }
  CHECK(sparse_impl() == SparseImpl::native);
}
