// Whole models on Device::cuda: built on the host (the same seed gives the same weights whatever
// the device), moved with Model::to, they give the cpu model's outputs and parameter gradients (an
// MLP 64-16-10 and a small conv net on 8×8 inputs, with a CSR layer), and move back unchanged.
#include <doctest/doctest.h>

#include "core/csr_weight.h"
#include "core/ops.h"
#include "core/test_cuda_util.h"
#include "gradcheck.h"
#include "models/builder.h"

using namespace st;
using namespace st::models;
using test::check_close_any;

namespace {

ModelSpec tiny(bool conv) {
  ModelSpec s;
  if (!conv) {
    s.arch = Arch::mlp;
    s.hidden = {16};
    return s;
  }
  s.arch = Arch::layers;
  s.layers = {layer_spec(LayerType::conv2d, 4, 3, 1), layer_spec(LayerType::relu),    layer_spec(LayerType::maxpool2d, 0, 2),
              layer_spec(LayerType::conv2d, 6, 3),    layer_spec(LayerType::relu),    layer_spec(LayerType::avgpool2d, 0, 2),
              layer_spec(LayerType::flatten),         layer_spec(LayerType::linear, 10)};
  return s;
}

}  // namespace

TEST_CASE("cuda models: forward and gradients match the cpu model, with a CSR layer" *
          doctest::skip(test::no_cuda_device())) {
  for (bool conv : {false, true}) {
    CAPTURE(conv);
    auto cpu = build_model(tiny(conv), {1, 8, 8}, 10, 7);
    auto gpu = build_model(tiny(conv), {1, 8, 8}, 10, 7);
    // The second weight layer is sparse on both (pattern: every other entry).
    for (Model* m : {cpu.get(), gpu.get()}) {
      Parameter* p = m->parameters()[2];
      p->mask = Tensor(p->var.shape(), DType::u8);
      for (int64_t i = 0; i < p->mask.numel(); ++i) {
        p->mask.u8()[i] = i % 2;
        if (i % 2 == 0) p->var.value().f32()[i] = 0.f;
      }
      to_sparse(*p);  // the CSR state is its only storage
    }
    gpu->to(Device::cuda);
    CHECK(gpu->device() == Device::cuda);
    for (Parameter* p : gpu->parameters())
      if (p->dense()) CHECK(p->var.value().device() == Device::cuda);
    CHECK(gpu->parameters()[2]->csr->device == Device::cuda);

    const Tensor x = test::random_tensor({5, 1, 8, 8}, 3);
    const std::vector<int32_t> lab{1, 3, 5, 7, 9};
    const Tensor y = Tensor::from_vector({5}, lab);
    Variable lc = softmax_cross_entropy(cpu->forward(Variable(x)), y);
    Variable lg = softmax_cross_entropy(gpu->forward(Variable(x.to(Device::cuda))), y.to(Device::cuda));
    CHECK(lg.value().item() == doctest::Approx(lc.value().item()).epsilon(1e-5));
    lc.backward();
    lg.backward();
    const auto& pc = cpu->parameters();
    const auto& pg = gpu->parameters();
    for (size_t i = 0; i < pc.size(); ++i) {
      CAPTURE(pc[i]->name);
      if (pc[i]->csr) {
        check_close_any(pg[i]->csr->values.grad(), pc[i]->csr->values.grad());
        CHECK(!pg[i]->var.has_grad());
      } else {
        check_close_any(pg[i]->var.grad(), pc[i]->var.grad());
      }
    }
    // Back to the host: the same weights, the CSR state on the host again.
    gpu->to(Device::cpu);
    for (size_t i = 0; i < pc.size(); ++i) CHECK(dense_value(*pg[i]).to_vector() == dense_value(*pc[i]).to_vector());
    CHECK(pg[2]->csr->device == Device::cpu);
    CHECK(pg[2]->csr->w.values == pc[2]->csr->w.values);
  }
}
