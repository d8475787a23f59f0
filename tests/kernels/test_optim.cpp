// tests/kernels/test_optim.cpp — fused SGD and Adam/AdamW steps against the double-precision
// reference over several steps and option combinations, a hand-computed first Adam step, and the
// mask invariant: pruned weights and their optimizer state are exactly 0 after every step.
#include "kernels/optim.h"
#include "kernels/reference.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

TEST_CASE("sgd_update matches the reference for momentum, dampening, nesterov, weight decay, masks") {
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{100003}}) {
    for (const auto& o : test::kSgdOptions) {
      for (bool masked : {false, true}) {
        INFO("n=" << n << " momentum=" << o.momentum << " nesterov=" << o.nesterov << " masked=" << masked);
        auto w = test::random_floats(n, 1), w_ref = w;
        const auto mask = test::random_mask(n, 2);
        const uint8_t* m = masked ? mask.data() : nullptr;
        std::vector<float> buf(n, 0.0f), buf_ref(n, 0.0f);
        float* b = o.momentum != 0.0f ? buf.data() : nullptr;
        float* b_ref = o.momentum != 0.0f ? buf_ref.data() : nullptr;
        for (int step = 0; step < 4; ++step) {
          const auto g = test::random_floats(n, 10 + step);
          sgd_update(n, w.data(), g.data(), b, 0.1f, o.momentum, o.dampening, o.weight_decay,
                     o.nesterov, step == 0, m);
          ref::sgd_update(n, w_ref.data(), g.data(), b_ref, 0.1f, o.momentum, o.dampening,
                          o.weight_decay, o.nesterov, step == 0, m);
        }
        test::check_close(w, w_ref, 1e-5);
        test::check_close(buf, buf_ref, 1e-5);
        if (masked) {
          test::check_masked_zero(mask, w);
          test::check_masked_zero(mask, buf);
        }
      }
    }
  }
}

TEST_CASE("adam_update matches the reference for Adam and AdamW, with and without masks") {
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{100003}}) {
    for (bool decoupled : {false, true}) {
      for (float wd : {0.0f, 1e-2f}) {
        for (bool masked : {false, true}) {
          INFO("n=" << n << " decoupled=" << decoupled << " wd=" << wd << " masked=" << masked);
          auto w = test::random_floats(n, 1), w_ref = w;
          const auto mask = test::random_mask(n, 2);
          const uint8_t* mk = masked ? mask.data() : nullptr;
          std::vector<float> m(n, 0.0f), v(n, 0.0f), m_ref(n, 0.0f), v_ref(n, 0.0f);
          for (int64_t step = 1; step <= 5; ++step) {
            const auto g = test::random_floats(n, 20 + step);
            adam_update(n, w.data(), g.data(), m.data(), v.data(), 1e-3f, 0.9f, 0.999f, 1e-8f, wd,
                        decoupled, step, mk);
            ref::adam_update(n, w_ref.data(), g.data(), m_ref.data(), v_ref.data(), 1e-3f, 0.9f,
                             0.999f, 1e-8f, wd, decoupled, step, mk);
          }
          test::check_close(w, w_ref, 1e-5);
          test::check_close(m, m_ref, 1e-5);
          test::check_close(v, v_ref, 1e-5, 1e-6);
          if (masked) {
            test::check_masked_zero(mask, w);
            test::check_masked_zero(mask, m);
            test::check_masked_zero(mask, v);
          }
        }
      }
    }
  }
}

TEST_CASE("Adam's first step moves each weight by about lr·sign(g) (bias correction)") {
  float w[2] = {1.0f, -2.0f};
  const float g[2] = {0.5f, -3.0f};
  float m[2] = {0, 0}, v[2] = {0, 0};
  adam_update(2, w, g, m, v, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 1, nullptr);
  CHECK(w[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(w[1] == doctest::Approx(-1.9).epsilon(1e-6));
  CHECK(m[0] == doctest::Approx(0.05));
  CHECK(v[1] == doctest::Approx(0.009));
}

TEST_CASE("SGD with momentum: first step copies g into the buffer, the next one blends") {
  float w = 1.0f, buf = 123.0f;  // a stale buffer must be ignored on the first step
  const float g1 = 2.0f, g2 = 4.0f;
  sgd_update(1, &w, &g1, &buf, 0.1f, 0.9f, 0.0f, 0.0f, false, true, nullptr);
  CHECK(buf == doctest::Approx(2.0f));
  CHECK(w == doctest::Approx(0.8f));
  sgd_update(1, &w, &g2, &buf, 0.1f, 0.9f, 0.0f, 0.0f, false, false, nullptr);
  CHECK(buf == doctest::Approx(0.9f * 2.0f + 4.0f));
  CHECK(w == doctest::Approx(0.8f - 0.1f * 5.8f));
}

}  // namespace
}  // namespace st::kernels
