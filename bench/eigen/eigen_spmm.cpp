// bench/eigen/eigen_spmm.cpp — our CSR SpMM against Eigen's sparse × dense product, side by side in
// one run (the comparison the CSR issue asks for). Not part of sparsetrain: Eigen is only a
// yardstick, built here when it is installed (libeigen3-dev) as the `bench_eigen_spmm` target.
//   y (B, OUT) = x (B, IN) · Wᵀ with W (OUT, IN) sparse at a uniform random pattern.
//   ours:   kernels::csr_spmm_xwt on x as the layer holds it (its transposes included in the time)
//   eigen:  SparseMatrix<float, RowMajor> W times a RowMajor dense xᵀ (IN, B) into RowMajor (OUT, B)
//           — Eigen's fastest layout, with xᵀ prepared outside the timing; Eigen::setNbThreads(T)
//   onednn: the dense yardstick (kernels::OnednnLinear::forward on the masked weight)
// Every result is checked against the dense product before timing; medians of ≥ 5 calls and
// ≥ 0.2 s after 3 warm-up calls. Usage: bench_eigen_spmm [--threads T] [--shapes OUTxINxB,...]
// Output: a markdown table of median µs and the speedups over oneDNN of ours and Eigen's.
#include <omp.h>

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/aligned.h"
#include "kernels/csr.h"
#include "kernels/gemm.h"
#include "kernels/onednn.h"
#include "kernels/sparse_cpu.h"

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double median_us(const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> us;
  double total = 0.0;
  while (total < 0.2 || us.size() < 5) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    us.push_back(1e6 * s);
    total += s;
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

void check(const char* what, const float* got, const st::bench::Floats& want, int depth) {
  const double scale = std::sqrt(static_cast<double>(depth));
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= 1e-4 * (std::fabs(want[i]) + scale))) {
      std::fprintf(stderr, "%s: output %zu is %g, the dense result is %g\n", what, i, got[i], want[i]);
      std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  std::vector<std::string> shapes = {"1024x1024x128", "4096x4096x128", "4096x4096x32", "300x784x64"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--shapes" && i + 1 < argc) {
      shapes.clear();
      std::stringstream ss(argv[++i]);
      for (std::string s; std::getline(ss, s, ',');) shapes.push_back(s);
    } else {
      std::fprintf(stderr, "usage: %s [--threads T] [--shapes OUTxINxB,...]\n", argv[0]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  Eigen::setNbThreads(threads);
  const std::vector<int> sparsities = {50, 60, 70, 80, 90, 95, 98, 99};
  std::printf("| shape | sparsity | oneDNN dense µs | ours µs | Eigen µs | ours vs oneDNN | Eigen vs oneDNN | ours vs Eigen |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  std::mt19937 rng(1234);
  for (const std::string& shape : shapes) {
    int OUT = 0, IN = 0, B = 0;
    if (std::sscanf(shape.c_str(), "%dx%dx%d", &OUT, &IN, &B) != 3 || OUT <= 0 || IN <= 0 || B <= 0) {
      std::fprintf(stderr, "--shapes: '%s' is not OUTxINxBATCH\n", shape.c_str());
      return 2;
    }
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // x, w and y 64-byte aligned like the trainer's tensors (bench/aligned.h); Eigen aligns its own.
    st::bench::Floats x(static_cast<size_t>(B) * IN), w_full(static_cast<size_t>(OUT) * IN);
    for (float& v : x) v = nd(rng);
    for (float& v : w_full) v = nd(rng);
    RowMat xt(IN, B);  // Eigen's operand: xᵀ, row-major
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < IN; ++k) xt(k, b) = x[static_cast<size_t>(b) * IN + k];
    st::bench::Floats y(static_cast<size_t>(B) * OUT), y_ref(y.size());
    st::kernels::OnednnLinear onednn(B, IN, OUT, false);
    double dense_us = -1.0;
    for (int sp : sparsities) {
      std::uniform_real_distribution<double> u(0.0, 1.0);
      st::bench::Floats w = w_full;
      std::vector<uint8_t> mask(w.size());
      std::vector<Eigen::Triplet<float>> trip;
      for (size_t i = 0; i < w.size(); ++i) {
        mask[i] = u(rng) >= sp / 100.0;
        if (!mask[i]) w[i] = 0.0f;
        else trip.emplace_back(static_cast<int>(i / IN), static_cast<int>(i % IN), w[i]);
      }
      st::kernels::CsrMatrix csr = st::kernels::csr_from_dense(w.data(), mask.data(), OUT, IN);
      Eigen::SparseMatrix<float, Eigen::RowMajor> ew(OUT, IN);
      ew.setFromTriplets(trip.begin(), trip.end());
      ew.makeCompressed();
      RowMat ey(OUT, B);

      st::kernels::sgemm(false, true, B, OUT, IN, 1.0f, x.data(), IN, w.data(), IN, 0.0f, y_ref.data(), OUT);
      st::kernels::csr_spmm_xwt(csr, x.data(), B, y.data(), 0.0f);
      check("ours", y.data(), y_ref, IN);
      ey.noalias() = ew * xt;
      std::vector<float> ey_t(y.size());
      for (int o = 0; o < OUT; ++o)
        for (int b = 0; b < B; ++b) ey_t[static_cast<size_t>(b) * OUT + o] = ey(o, b);
      check("eigen", ey_t.data(), y_ref, IN);
      onednn.forward(x.data(), w.data(), nullptr, y.data());
      check("onednn", y.data(), y_ref, IN);

      if (dense_us < 0) dense_us = median_us([&] { onednn.forward(x.data(), w.data(), nullptr, y.data()); });
      const double ours = median_us([&] { st::kernels::csr_spmm_xwt(csr, x.data(), B, y.data(), 0.0f); });
      const double eigen = median_us([&] { ey.noalias() = ew * xt; });
      std::printf("| %s | %d%% | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2fx |\n", shape.c_str(), sp,
                  dense_us, ours, eigen, dense_us / ours, dense_us / eigen, eigen / ours);
      std::fflush(stdout);
    }
  }
  std::printf("\n(%d threads; Eigen %d.%d.%d with OpenMP; median of >= 5 calls and >= 0.2 s each)\n",
              threads, EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
  return 0;
}
