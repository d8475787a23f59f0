#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "gradcheck.h"
#include "models/builder.h"

using namespace st;
using namespace st::models;

namespace {
ModelSpec arch(Arch a) {
  ModelSpec s;
  s.arch = a;
  return s;
}
std::vector<std::string> names(const Model& m) {
  std::vector<std::string> n;
  for (Parameter* p : m.parameters()) n.push_back(p->name);
  return n;
}
// Masks every weight of `ndim` dimensions at random (80% zeros) and makes it CSR.
void make_sparse(Model& m, int64_t ndim) {
  for (Parameter* p : m.parameters())
    if (p->var.value().ndim() == ndim) {
      p->mask = test::random_mask(p->var.value().shape(), 0.8, 9);
      for (int64_t i = 0; i < p->mask.numel(); ++i)
        if (!p->mask.u8()[i]) p->var.value().f32()[i] = 0.f;
      to_sparse(*p);
    }
}
// How many nodes of the graph behind `out` satisfy pred(node).
template <class Pred>
int count_nodes(const Variable& out, Pred pred) {
  int n = 0;
  std::vector<Node*> stack{out.grad_fn().get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    if (!node) continue;
    n += pred(*node) ? 1 : 0;
    for (const Variable& in : node->inputs) stack.push_back(in.grad_fn().get());
  }
  return n;
}
int count_named(const Variable& out, const std::string& name) {
  return count_nodes(out, [&](const Node& n) { return n.name() == name; });
}
// Model::forward (fused) against forward_collect (layer by layer) on one batch: the logits and every
// parameter gradient, bit for bit when tol == 0, else to that relative tolerance. check_graph sees
// each pass's logits (e.g. to count the fused nodes) with the pass's `fused` flag.
template <class CheckGraph>
void check_fused_equals_layers(Model& m, const Tensor& x, const Tensor& labels, double tol,
                               CheckGraph check_graph) {
  auto run = [&](bool fused) {
    for (Parameter* p : m.parameters()) {
      Variable& v = p->sparse() ? p->csr->values : p->var;
      if (v.has_grad()) v.grad() = Tensor();
    }
    std::vector<Tensor> outs;
    Variable logits = fused ? m.forward(Variable(x)) : m.forward_collect(Variable(x), outs);
    check_graph(logits, fused);
    softmax_cross_entropy(logits, labels).backward();
    std::vector<Tensor> r{logits.value().clone()};
    for (Parameter* p : m.parameters()) r.push_back((p->sparse() ? p->csr->values : p->var).grad().clone());
    return r;
  };
  const std::vector<Tensor> want = run(false), got = run(true);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].numel() == want[i].numel());
    if (tol == 0) {
      CHECK(std::equal(got[i].f32(), got[i].f32() + got[i].numel(), want[i].f32()));
    } else {
      for (int64_t k = 0; k < got[i].numel(); ++k)
        CHECK(got[i].f32()[k] == doctest::Approx(want[i].f32()[k]).epsilon(tol).scale(1));
    }
  }
}
}  // namespace

TEST_CASE("named architectures: parameter counts, names in a stable order, MACs") {
  auto l300 = build_model(arch(Arch::lenet300), {1, 28, 28}, 10, 1);
  CHECK(l300->num_parameters() == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
  CHECK(names(*l300) == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                                 "fc3.weight", "fc3.bias"});
  auto l5 = build_model(arch(Arch::lenet5), {1, 28, 28}, 10, 1);
  CHECK(l5->num_parameters() == 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 5010);
  CHECK(names(*l5).front() == "conv1.weight");
  CHECK(l5->output_shape() == Shape{10});
  // conv1 24·24·20·25 + conv2 8·8·50·500 + 800·500 + 500·10
  CHECK(l5->macs_per_sample() == 288000 + 1600000 + 400000 + 5000);
  auto cnn = build_model(arch(Arch::simplecnn), {1, 28, 28}, 10, 1);
  CHECK(cnn->num_parameters() == 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 128 + 128 + 1290);
  ModelSpec mlp = arch(Arch::mlp);
  mlp.hidden = {7, 5};
  mlp.dropout = 0.5f;
  auto m = build_model(mlp, {2, 3, 3}, 4, 1);
  CHECK(m->num_parameters() == 18 * 7 + 7 + 7 * 5 + 5 + 5 * 4 + 4);
  CHECK(m->summary().find("dropout1") != std::string::npos);
}

TEST_CASE("builder: same seed, same weights; different seed, different weights") {
  auto a = build_model(arch(Arch::lenet5), {1, 28, 28}, 10, 7);
  auto b = build_model(arch(Arch::lenet5), {1, 28, 28}, 10, 7);
  auto c = build_model(arch(Arch::lenet5), {1, 28, 28}, 10, 8);
  CHECK(a->parameters()[0]->var.value().to_vector() == b->parameters()[0]->var.value().to_vector());
  CHECK(a->parameters()[0]->var.value().to_vector() != c->parameters()[0]->var.value().to_vector());
}

TEST_CASE("initializations have the expected spread") {
  for (Init init : {Init::pytorch, Init::kaiming_uniform, Init::kaiming_normal, Init::glorot_uniform, Init::glorot_normal}) {
    CAPTURE(static_cast<int>(init));
    ModelSpec s = arch(Arch::lenet300);
    s.init = init;
    auto m = build_model(s, {1, 28, 28}, 10, 1);
    auto w = m->parameters()[0]->var.value().to_vector();  // fc1: fan_in 784, fan_out 300
    double sq = 0;
    for (float v : w) sq += double(v) * v;
    const double var = sq / w.size();
    double expected = init == Init::pytorch ? 1.0 / (3 * 784)
                      : init == Init::kaiming_uniform || init == Init::kaiming_normal ? 2.0 / 784
                                                     : 2.0 / (784 + 300);
    CHECK(var == doctest::Approx(expected).epsilon(0.05));
  }
  ModelSpec bad = arch(Arch::lenet300);
  bad.init = static_cast<Init>(99);  // not a value of the enum
  CHECK_THROWS_WITH_AS(build_model(bad, {1, 28, 28}, 10, 1), doctest::Contains("model.init"), Error);
}

TEST_CASE("layers list: naming, shape errors at build time") {
  ModelSpec s = arch(Arch::layers);
  LayerSpec conv;
  conv.type = LayerType::conv2d;
  conv.out = 4;
  conv.kernel_h = conv.kernel_w = 3;
  LayerSpec fl;
  fl.type = LayerType::flatten;
  LayerSpec fc;
  fc.type = LayerType::linear;
  fc.out = 10;
  s.layers = {conv, fl, fc};
  auto m = build_model(s, {1, 8, 8}, 10, 1);
  CHECK(names(*m) == std::vector<std::string>{"conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"});
  // linear directly after a conv: needs flatten
  s.layers = {conv, fc};
  CHECK_THROWS_WITH_AS(build_model(s, {1, 8, 8}, 10, 1), doctest::Contains("flatten"), Error);
  // kernel bigger than the input
  LayerSpec big = conv;
  big.kernel_h = big.kernel_w = 9;
  s.layers = {big, fl, fc};
  CHECK_THROWS_WITH_AS(build_model(s, {1, 8, 8}, 10, 1), doctest::Contains("does not fit"), Error);
  // wrong number of outputs
  LayerSpec fc5 = fc;
  fc5.out = 5;
  s.layers = {conv, fl, fc5};
  CHECK_THROWS_WITH_AS(build_model(s, {1, 8, 8}, 10, 1), doctest::Contains("10 classes"), Error);
  // duplicate names
  LayerSpec named = fc;
  named.name = "conv1";
  s.layers = {conv, fl, named};
  CHECK_THROWS_WITH_AS(build_model(s, {1, 8, 8}, 10, 1), doctest::Contains("two layers"), Error);
}

TEST_CASE("a whole small CNN: finite-difference gradient of the loss w.r.t. every parameter") {
  ModelSpec s = arch(Arch::layers);
  LayerSpec conv;
  conv.type = LayerType::conv2d;
  conv.out = 3;
  conv.kernel_h = conv.kernel_w = 3;
  conv.pad_h = conv.pad_w = 1;
  LayerSpec relu_l, pool, fl, fc;
  relu_l.type = LayerType::relu;
  pool.type = LayerType::avgpool2d;
  pool.kernel_h = pool.kernel_w = 2;
  fl.type = LayerType::flatten;
  fc.type = LayerType::linear;
  fc.out = 4;
  s.layers = {conv, relu_l, pool, fl, fc};
  for (DenseBackend be : {DenseBackend::native, DenseBackend::onednn}) {
    set_dense_backend(be);
    auto m = build_model(s, {2, 6, 6}, 4, 3);
    Tensor x = test::random_tensor({3, 2, 6, 6}, 5);
    Tensor y = Tensor::from_vector({3}, std::vector<int32_t>{0, 3, 1});
    auto loss_value = [&]() {
      NoGradGuard ng;
      return double(softmax_cross_entropy(m->forward(Variable(x)), y).value().f32()[0]);
    };
    softmax_cross_entropy(m->forward(Variable(x)), y).backward();
    double worst = 0;
    for (Parameter* p : m->parameters()) {
      float* w = p->var.value().f32();
      for (int64_t i = 0; i < p->var.value().numel(); i += 3) {
        const float saved = w[i];
        w[i] = saved + 1e-2f;
        double lp = loss_value();
        w[i] = saved - 1e-2f;
        double lm = loss_value();
        w[i] = saved;
        double num = (lp - lm) / 2e-2;
        worst = std::max(worst, std::abs(num - p->var.grad().f32()[i]) / std::max(1.0, std::abs(num)));
      }
    }
    CHECK(worst < 2e-2);
  }
  set_dense_backend(DenseBackend::onednn);
}

TEST_CASE("native and oneDNN backends give the same outputs and gradients on LeNet-5") {
  std::vector<std::vector<float>> out, grads;
  for (DenseBackend be : {DenseBackend::native, DenseBackend::onednn}) {
    set_dense_backend(be);
    auto m = build_model(arch(Arch::lenet5), {1, 28, 28}, 10, 11);
    Tensor x = test::random_tensor({5, 1, 28, 28}, 12);
    Tensor y = Tensor::from_vector({5}, std::vector<int32_t>{1, 2, 3, 4, 5});
    Variable logits = m->forward(Variable(x));
    out.push_back(logits.value().to_vector());
    softmax_cross_entropy(logits, y).backward();
    std::vector<float> g;
    for (Parameter* p : m->parameters()) {
      auto v = p->var.grad().to_vector();
      g.insert(g.end(), v.begin(), v.end());
    }
    grads.push_back(g);
  }
  set_dense_backend(DenseBackend::onednn);
  for (size_t i = 0; i < out[0].size(); ++i) CHECK(out[0][i] == doctest::Approx(out[1][i]).epsilon(1e-4));
  double worst = 0;
  for (size_t i = 0; i < grads[0].size(); ++i)
    worst = std::max(worst, double(std::abs(grads[0][i] - grads[1][i])) /
                                std::max(1e-3, double(std::abs(grads[0][i]))));
  CHECK(worst < 1e-3);
}

// A CSR conv followed by relu and a max pool (and LeNet-5's conv straight into a pool) runs fused in
// Model::forward; forward_collect runs the layers one by one. Same outputs and gradients, bitwise.
TEST_CASE("fused CSR conv + relu + max pool: the same outputs and gradients as layer by layer") {
  for (Arch a : {Arch::simplecnn, Arch::lenet5}) {
    auto m = build_model(arch(a), {1, 28, 28}, 10, 7);
    make_sparse(*m, 4);
    Tensor x = test::random_tensor({5, 1, 28, 28}, 11);
    Tensor y = Tensor::from_vector({5}, std::vector<int32_t>{0, 3, 1, 9, 4});
    check_fused_equals_layers(*m, x, y, 0, [](const Variable& logits, bool fused) {
      CHECK(count_named(logits, "sparse_conv2d_pool") == (fused ? 2 : 0));
    });
  }
}

// LeNet-300's CSR fc1 and fc2 run with their relus in the same node; fc3 (no relu after it) and a
// dense layer do not.
TEST_CASE("CSR Linear + relu runs as one node: the same outputs and gradients as layer by layer") {
  auto m = build_model(arch(Arch::lenet300), {1, 28, 28}, 10, 7);
  make_sparse(*m, 2);
  Tensor x = test::random_tensor({37, 1, 28, 28}, 11);
  std::vector<int32_t> labels(37);
  for (int i = 0; i < 37; ++i) labels[i] = (i * 3) % 10;
  Tensor y = Tensor::from_vector({37}, labels);
  check_fused_equals_layers(*m, x, y, 0, [](const Variable& logits, bool fused) {
    CHECK(count_named(logits, "sparse_linear_relu") == (fused ? 2 : 0));
    CHECK(count_named(logits, "sparse_linear") == (fused ? 1 : 3));
    CHECK(count_named(logits, "relu") == (fused ? 0 : 2));
  });
  to_dense(*m->find_parameter("fc2.weight"));
  Variable logits = m->forward(Variable(x));
  CHECK(count_named(logits, "sparse_linear_relu") == 1);
  CHECK(count_named(logits, "relu") == 1);
}

TEST_CASE("wide CSR Linear layers run feature-major: the same outputs and gradients as layer by layer") {
  ModelSpec spec = arch(Arch::mlp);
  spec.hidden = {40, 33};
  auto m = build_model(spec, {1, 28, 28}, 10, 7);
  make_sparse(*m, 2);
  Tensor x = test::random_tensor({37, 1, 28, 28}, 11);
  std::vector<int32_t> labels(37);
  for (int i = 0; i < 37; ++i) labels[i] = (i * 7) % 10;
  Tensor y = Tensor::from_vector({37}, labels);
  // The default rule keeps a 40-wide MLP batch-major.
  CHECK(count_named(m->forward(Variable(x)), "sparse_linear_fm") == 0);
  m->set_feature_major_rule({1, 1e9});
  check_fused_equals_layers(*m, x, y, 1e-4, [](const Variable& logits, bool fused) {
    CHECK(count_named(logits, "sparse_linear_fm") == (fused ? 3 : 0));
    CHECK(count_named(logits, "sparse_linear") == (fused ? 0 : 3));
  });
  // Too many nonzeros per input column for the rule: batch-major again.
  m->set_feature_major_rule({1, 0.5});
  CHECK(count_named(m->forward(Variable(x)), "sparse_linear_fm") == 0);
  // One CSR layer alone is not a run.
  to_dense(*m->find_parameter("fc2.weight"));
  m->set_feature_major_rule({1, 1e9});
  CHECK(count_named(m->forward(Variable(x)), "sparse_linear_fm") == 0);
}

TEST_CASE("relu then max pool runs as max pool then relu: the same outputs and gradients bit for bit") {
  // SimpleCNN: conv, relu, max pool twice (LeNet-5 has no relu before its pools).
  auto m = build_model(arch(Arch::simplecnn), {1, 28, 28}, 10, 7);
  Tensor x = test::random_tensor({6, 1, 28, 28}, 12);
  // Some windows entirely negative, ties at the maximum, and exact zeros.
  for (int64_t i = 0; i < x.numel(); i += 7) x.f32()[i] = -std::abs(x.f32()[i]);
  for (int64_t i = 0; i < x.numel(); i += 11) x.f32()[i] = 0.f;
  Tensor y = Tensor::from_vector({6}, std::vector<int32_t>{0, 3, 1, 9, 4, 4});
  check_fused_equals_layers(*m, x, y, 0, [](const Variable& logits, bool reordered) {
    // Reordered, each pool feeds a relu; layer by layer, each relu feeds a pool.
    const int relu_after_pool = count_nodes(logits, [](const Node& n) {
      return std::string(n.name()) == "relu" && n.inputs[0].grad_fn() &&
             std::string(n.inputs[0].grad_fn()->name()) == "max_pool2d";
    });
    CHECK(relu_after_pool == (reordered ? 2 : 0));
  });
}
