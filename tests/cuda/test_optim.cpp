// tests/cuda/test_optim.cpp — cuda/optim.cu against the CPU's fused updates (kernels/optim.h) and
// the double reference over several steps: SGD with momentum, dampening, nesterov, weight decay;
// Adam and AdamW; n = 0, 1 and odd sizes; masks, with NaN gradients at the pruned entries, which
// must leave the weight and all its state exactly 0.
#include <limits>
#include <random>
#include <vector>

#include "cuda/optim.h"
#include "cuda_test_util.h"
#include "kernels/kernel_test_util.h"
#include "kernels/optim.h"
#include "kernels/reference.h"

namespace st::cuda {
namespace {

namespace kt = st::kernels::test;
using test::DeviceArray;
using test::to_device;

// Gradients for step `step`; NaN at pruned entries when masked, which the update must not leak.
std::vector<float> gradient(size_t n, uint32_t seed, const std::vector<uint8_t>* mask) {
  auto g = kt::random_floats(n, seed);
  if (mask)
    for (size_t i = 0; i < n; ++i)
      if (!(*mask)[i]) g[i] = std::numeric_limits<float>::quiet_NaN();
  return g;
}

TEST_CASE("cuda sgd_update matches the CPU and the reference; masked entries stay exactly 0") {
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{3001}}) {
    for (const auto& o : kt::kSgdOptions) {
      for (bool masked : {false, true}) {
        INFO("n=" << n << " momentum=" << o.momentum << " dampening=" << o.dampening
                  << " wd=" << o.weight_decay << " nesterov=" << o.nesterov << " masked=" << masked);
        const auto mask = kt::random_mask(n, 2);
        auto w_cpu = kt::random_floats(n, 1), w_ref = w_cpu;
        std::vector<float> buf_cpu(n, 0.5f), buf_ref(n, 0.5f);  // stale: masking must clear it
        auto dw = to_device(w_cpu), dbuf = to_device(buf_cpu);
        auto dmask = to_device(mask);
        const bool has_buf = o.momentum != 0.f || masked;  // plain masked SGD may carry a buffer
        for (int step = 0; step < 4; ++step) {
          const auto g = gradient(n, 10 + step, masked ? &mask : nullptr);
          auto dg = to_device(g);
          sgd_update(n, dw.get(), dg.get(), has_buf ? dbuf.get() : nullptr, 0.1f, o.momentum,
                     o.dampening, o.weight_decay, o.nesterov, step == 0,
                     masked ? dmask.get() : nullptr);
          kernels::sgd_update(n, w_cpu.data(), g.data(), has_buf ? buf_cpu.data() : nullptr, 0.1f,
                              o.momentum, o.dampening, o.weight_decay, o.nesterov, step == 0,
                              masked ? mask.data() : nullptr);
          kernels::ref::sgd_update(n, w_ref.data(), g.data(), has_buf ? buf_ref.data() : nullptr,
                                   0.1f, o.momentum, o.dampening, o.weight_decay, o.nesterov,
                                   step == 0, masked ? mask.data() : nullptr);
        }
        const auto w = dw.download(), buf = dbuf.download();
        kt::check_close(w, w_cpu, 1e-6);
        kt::check_close(buf, buf_cpu, 1e-6);
        kt::check_close(w, w_ref, 1e-5);
        kt::check_close(buf, buf_ref, 1e-5);
        if (masked) {
          kt::check_masked_zero(mask, w);
          kt::check_masked_zero(mask, buf);
        }
      }
    }
  }
}

TEST_CASE("cuda adam_update matches the CPU and the reference for Adam and AdamW, with masks") {
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{3001}}) {
    for (bool decoupled : {false, true}) {
      for (float wd : {0.f, 1e-2f}) {
        for (bool masked : {false, true}) {
          INFO("n=" << n << " decoupled=" << decoupled << " wd=" << wd << " masked=" << masked);
          const auto mask = kt::random_mask(n, 2);
          auto w_cpu = kt::random_floats(n, 1), w_ref = w_cpu;
          std::vector<float> m_cpu(n, 0.f), v_cpu(n, 0.f), m_ref(n, 0.f), v_ref(n, 0.f);
          auto dw = to_device(w_cpu), dm = to_device(m_cpu), dv = to_device(v_cpu);
          auto dmask = to_device(mask);
          for (int64_t step = 1; step <= 5; ++step) {
            const auto g = gradient(n, 20 + static_cast<uint32_t>(step), masked ? &mask : nullptr);
            auto dg = to_device(g);
            const uint8_t* hm = masked ? mask.data() : nullptr;
            adam_update(n, dw.get(), dg.get(), dm.get(), dv.get(), 1e-3f, 0.9f, 0.999f, 1e-8f, wd,
                        decoupled, step, masked ? dmask.get() : nullptr);
            kernels::adam_update(n, w_cpu.data(), g.data(), m_cpu.data(), v_cpu.data(), 1e-3f, 0.9f,
                                 0.999f, 1e-8f, wd, decoupled, step, hm);
            kernels::ref::adam_update(n, w_ref.data(), g.data(), m_ref.data(), v_ref.data(), 1e-3f,
                                      0.9f, 0.999f, 1e-8f, wd, decoupled, step, hm);
          }
          const auto w = dw.download(), m = dm.download(), v = dv.download();
          kt::check_close(w, w_cpu, 1e-6);
          kt::check_close(m, m_cpu, 1e-6);
          kt::check_close(v, v_cpu, 1e-6, 1e-6);
          kt::check_close(w, w_ref, 1e-5);
          kt::check_close(m, m_ref, 1e-5);
          kt::check_close(v, v_ref, 1e-5, 1e-6);
          if (masked) {
            kt::check_masked_zero(mask, w);
            kt::check_masked_zero(mask, m);
            kt::check_masked_zero(mask, v);
          }
        }
      }
    }
  }
}

TEST_CASE("cuda optimizer updates with n = 0 touch nothing") {
  sgd_update(0, nullptr, nullptr, nullptr, 0.1f, 0.9f, 0.f, 0.f, false, true, nullptr);
  adam_update(0, nullptr, nullptr, nullptr, nullptr, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, true, 1, nullptr);
  // A hand-checked first Adam step: each weight moves by about lr·sign(g).
  auto dw = to_device(std::vector<float>{1.f, -2.f});
  auto dg = to_device(std::vector<float>{0.5f, -3.f});
  auto dm = to_device(std::vector<float>{0.f, 0.f}), dv = to_device(std::vector<float>{0.f, 0.f});
  adam_update(2, dw.get(), dg.get(), dm.get(), dv.get(), 0.1f, 0.9f, 0.999f, 1e-8f, 0.f, false, 1, nullptr);
  const auto w = dw.download();
  CHECK(w[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(w[1] == doctest::Approx(-1.9).epsilon(1e-6));
}

}  // namespace
}  // namespace st::cuda
