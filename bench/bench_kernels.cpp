// bench/bench_kernels.cpp — `sparsetrain bench kernels`: does a CSR layer really run faster?
// A Linear layer W (OUT, IN), batch B, three passes, each against its dense twins:
//   forward   y  (B, OUT) = x · Wᵀ   csr_spmm_xwt  vs  sgemm (kernels/gemm.h), OnednnLinear::forward
//   bwd data  dx (B, IN)  = dy · W   csr_spmm_dyw  vs  OnednnLinear::backward_data   (impl csr_spmm_t)
//   bwd wts   dW at W's nonzeros     csr_sddmm_dyx vs  OnednnLinear::backward_weights (impl csr_sddmm)
// plus csr_refresh (csr_update_values + csr_transpose_values: the O(nnz) per-optimizer-step cost of
// keeping W's CSR and its transposed copy current). Shapes are OUTxINxBATCH; sparsities 0..99%.
// The pattern is uniform random (what magnitude pruning of a random-init weight gives).
// Protocol: every implementation's output is checked against our dense sgemm on the masked weight
// before anything is timed; then 3 warm-up calls, then each call is timed until ≥ 0.2 s and ≥ 5
// calls (quick: 0.05 s, 3 calls); the median is reported.
// gflops_effective counts useful flops: 2·nnz·B for CSR, 2·OUT·IN·B for dense.
// speedup_vs_onednn is oneDNN's time for the same pass divided by this implementation's time.
// Outputs: CSV (--csv), markdown (stdout and --md) with the crossover sparsity per shape, SVG (--svg)
// of SpMM's speedup over oneDNN against sparsity (log y).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "core/check.h"
#include "kernels/csr.h"
#include "kernels/gemm.h"
#include "kernels/onednn.h"
#include "kernels/sparse_cpu.h"

namespace st::bench {
namespace {

using namespace st::kernels;

struct LinearShape {
  int out, in, batch;
  std::string name() const {
    return std::to_string(out) + "x" + std::to_string(in) + "x" + std::to_string(batch);
  }
};

const std::vector<LinearShape> kShapes = {
    {300, 784, 64},   {300, 784, 128},   {100, 300, 64},    {100, 300, 128}, {500, 800, 64},
    {500, 800, 128},  {1024, 1024, 128}, {4096, 4096, 128}, {4096, 4096, 32}};

struct Row {
  std::string shape;
  int sparsity;  // percent
  std::string impl;
  double median_us, gflops, speedup;  // speedup NaN where there is no oneDNN twin
};

struct Timing {
  double min_s;
  int min_reps;
};

double median_us(const std::function<void()>& fn, Timing t) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> us;
  double total = 0.0;
  while (total < t.min_s || static_cast<int>(us.size()) < t.min_reps) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    us.push_back(1e6 * s);
    total += s;
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

// |got − want| ≤ 1e-4·(|want| + sqrt(depth)) everywhere, else an error naming the implementation.
void validate(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
              int depth) {
  ST_ASSERT(got.size() == want.size(), what);
  const double scale = std::sqrt(static_cast<double>(std::max(depth, 1)));
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= 1e-4 * (std::fabs(static_cast<double>(want[i])) + scale)))
      ST_ASSERT(false, what, ": output ", i, " is ", got[i], ", the dense result is ", want[i]);
  }
}

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Crossover: the sparsity above which speedup stays ≥ 1, interpolated in log(speedup) between
// the two sweep points around it. "<= s%" when even the lowest point is ≥ 1; "none" when the
// highest is below 1.
std::string crossover(const std::vector<std::pair<int, double>>& pts) {
  if (pts.empty()) return "-";
  if (pts.back().second < 1.0) return "none";
  size_t i = pts.size() - 1;
  while (i > 0 && pts[i - 1].second >= 1.0) --i;
  if (i == 0) return "<= " + std::to_string(pts[0].first) + "%";
  const double s0 = pts[i - 1].first, s1 = pts[i].first;
  const double l0 = std::log(pts[i - 1].second), l1 = std::log(pts[i].second);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", s0 + (s1 - s0) * (0.0 - l0) / (l1 - l0));
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string markdown(const std::vector<Row>& rows, const std::vector<std::string>& shapes,
                     const std::vector<int>& sparsities, int threads) {
  auto find = [&](const std::string& shape, int sp, const std::string& impl) -> const Row* {
    for (const Row& r : rows)
      if (r.shape == shape && r.sparsity == sp && r.impl == impl) return &r;
    return nullptr;
  };
  std::ostringstream md;
  md << "## CSR kernels vs dense (threads " << threads << ")\n\n";
  md << "Dense medians (µs): oneDNN forward / backward-data / backward-weights, our sgemm forward.\n\n";
  md << "| shape (OUTxINxB) | onednn_fwd | onednn_bwd_data | onednn_bwd_weights | dense_sgemm |\n";
  md << "|---|---|---|---|---|\n";
  for (const std::string& s : shapes) {
    md << "| " << s;
    for (const char* impl : {"onednn_fwd", "onednn_bwd_data", "onednn_bwd_weights", "dense_sgemm"}) {
      const Row* r = find(s, sparsities.front(), impl);
      md << " | " << (r ? fmt("%.1f", r->median_us) : "-");
    }
    md << " |\n";
  }
  const std::pair<const char*, const char*> sparse_impls[] = {
      {"csr_spmm", "SpMM y = x·Wᵀ, speedup over oneDNN forward"},
      {"csr_spmm_t", "SpMMᵀ dx = dy·W, speedup over oneDNN backward-data"},
      {"csr_sddmm", "SDDMM dW at nonzeros, speedup over oneDNN backward-weights"},
      {"dense_sgemm", "our dense sgemm forward, speedup over oneDNN forward"}};
  for (const auto& [impl, title] : sparse_impls) {
    md << "\n### " << title << "\n\n| shape |";
    for (int sp : sparsities) md << " " << sp << "% |";
    md << " crossover |\n|---|";
    for (size_t i = 0; i <= sparsities.size(); ++i) md << "---|";
    md << "\n";
    for (const std::string& s : shapes) {
      md << "| " << s << " |";
      std::vector<std::pair<int, double>> pts;
      for (int sp : sparsities) {
        const Row* r = find(s, sp, impl);
        md << " " << (r ? fmt("%.2f", r->speedup) : "-") << " |";
        if (r) pts.emplace_back(sp, r->speedup);
      }
      md << " " << crossover(pts) << " |\n";
    }
  }
  for (const char* impl : {"csr_spmm_t", "csr_sddmm", "csr_refresh"}) {
    md << "\n### time of " << impl << " / time of csr_spmm\n\n| shape |";
    for (int sp : sparsities) md << " " << sp << "% |";
    md << "\n|---|";
    for (size_t i = 0; i < sparsities.size(); ++i) md << "---|";
    md << "\n";
    for (const std::string& s : shapes) {
      md << "| " << s << " |";
      for (int sp : sparsities) {
        const Row *r = find(s, sp, impl), *base = find(s, sp, "csr_spmm");
        md << " " << (r && base ? fmt("%.2f", r->median_us / base->median_us) : "-") << " |";
      }
      md << "\n";
    }
  }
  return md.str();
}

// Speedup of csr_spmm over oneDNN forward against sparsity, one polyline per shape, log y.
std::string svg_plot(const std::vector<Row>& rows, const std::vector<std::string>& shapes) {
  const double W = 860, H = 520, left = 70, right = 220, top = 40, bottom = 60;
  double ymin = 1.0, ymax = 1.0;
  for (const Row& r : rows)
    if (r.impl == "csr_spmm" && r.speedup > 0) {
      ymin = std::min(ymin, r.speedup);
      ymax = std::max(ymax, r.speedup);
    }
  const double lo = std::floor(std::log10(ymin)), hi = std::ceil(std::log10(ymax));
  const double span = std::max(hi - lo, 1.0);
  auto X = [&](double sp) { return left + (W - left - right) * sp / 100.0; };
  auto Y = [&](double s) { return top + (H - top - bottom) * (1.0 - (std::log10(s) - lo) / span); };
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << left << "\" y=\"22\" font-size=\"15\">CSR SpMM (y = x·Wᵀ) speedup over "
       "oneDNN dense, by sparsity</text>\n";
  for (double e = lo; e <= hi + 1e-9; e += 1.0)
    for (int m : {1, 2, 5}) {
      const double v = m * std::pow(10.0, e);
      if (std::log10(v) > hi + 1e-9) continue;
      const double y = Y(v);
      s << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << y << "\" y2=\"" << y
        << "\" stroke=\"" << (m == 1 ? "#bbb" : "#eee") << "\"/>\n";
      s << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << v
        << "×</text>\n";
    }
  s << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << Y(1.0) << "\" y2=\""
    << Y(1.0) << "\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n";
  for (int sp = 0; sp <= 100; sp += 10) {
    s << "<line x1=\"" << X(sp) << "\" x2=\"" << X(sp) << "\" y1=\"" << top << "\" y2=\""
      << H - bottom << "\" stroke=\"#eee\"/>\n";
    s << "<text x=\"" << X(sp) << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">" << sp
      << "%</text>\n";
  }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right
    << "\" height=\"" << H - top - bottom << "\" fill=\"none\" stroke=\"black\"/>\n";
  s << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 15
    << "\" text-anchor=\"middle\">sparsity</text>\n";
  s << "<text transform=\"translate(18," << (top + H - bottom) / 2
    << ") rotate(-90)\" text-anchor=\"middle\">speedup vs oneDNN (log)</text>\n";
  for (size_t i = 0; i < shapes.size(); ++i) {
    const char* color = colors[i % 10];
    std::ostringstream pts;
    for (const Row& r : rows)
      if (r.impl == "csr_spmm" && r.shape == shapes[i] && r.speedup > 0)
        pts << X(r.sparsity) << "," << Y(r.speedup) << " ";
    s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\""
      << pts.str() << "\"/>\n";
    for (const Row& r : rows)
      if (r.impl == "csr_spmm" && r.shape == shapes[i] && r.speedup > 0)
        s << "<circle cx=\"" << X(r.sparsity) << "\" cy=\"" << Y(r.speedup) << "\" r=\"3\" fill=\""
          << color << "\"/>\n";
    const double ly = top + 10 + 20.0 * i;
    s << "<line x1=\"" << W - right + 15 << "\" x2=\"" << W - right + 40 << "\" y1=\"" << ly
      << "\" y2=\"" << ly << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n";
    s << "<text x=\"" << W - right + 46 << "\" y=\"" << ly + 4 << "\">" << shapes[i] << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  ST_CHECK(f.good(), "cannot write ", path);
  f << text;
  ST_CHECK(f.good(), "cannot write ", path);
}

}  // namespace

int bench_kernels(const KernelBenchOptions& o) {
  omp_set_num_threads(o.threads);
  std::vector<LinearShape> shapes;
  for (const LinearShape& s : kShapes)
    if (o.shapes.empty() || std::find(o.shapes.begin(), o.shapes.end(), s.name()) != o.shapes.end())
      shapes.push_back(s);
  for (const std::string& want : o.shapes) {
    bool known = false;
    for (const LinearShape& s : kShapes) known |= s.name() == want;
    std::string all;
    for (const LinearShape& s : kShapes) all += " " + s.name();
    ST_CHECK(known, "--shapes: unknown shape '", want, "' (expected one of:", all, ")");
  }
  const std::vector<int> sparsities =
      o.quick ? std::vector<int>{0, 50, 90, 99} : std::vector<int>{0, 50, 60, 70, 80, 90, 95, 98, 99};
  const Timing timing = o.quick ? Timing{0.05, 3} : Timing{0.2, 5};

  std::vector<Row> rows;
  std::vector<std::string> shape_names;
  std::mt19937 rng(1234);
  for (const LinearShape& sh : shapes) {
    const int OUT = sh.out, IN = sh.in, B = sh.batch;
    const std::string name = sh.name();
    shape_names.push_back(name);
    const std::vector<float> x = randn(static_cast<size_t>(B) * IN, rng);
    const std::vector<float> dy = randn(static_cast<size_t>(B) * OUT, rng);
    const std::vector<float> w_full = randn(static_cast<size_t>(OUT) * IN, rng);
    const double dense_flops = 2.0 * OUT * IN * B;
    std::vector<float> y(static_cast<size_t>(B) * OUT), dx(static_cast<size_t>(B) * IN),
        dw(static_cast<size_t>(OUT) * IN), y_ref = y, dx_ref = dx, dw_ref = dw;
    OnednnLinear onednn(B, IN, OUT, false);
    std::map<std::string, double> dense_us;
    for (int sp : sparsities) {
      std::vector<uint8_t> mask(w_full.size());
      std::uniform_real_distribution<double> u(0.0, 1.0);
      std::vector<float> w = w_full;
      for (size_t i = 0; i < w.size(); ++i) {
        mask[i] = u(rng) >= sp / 100.0;
        if (!mask[i]) w[i] = 0.0f;
      }
      CsrMatrix csr = csr_from_dense(w.data(), mask.data(), OUT, IN);
      std::vector<int32_t> perm;
      CsrMatrix csr_t = csr_transpose(csr, perm);
      std::vector<float> dw_vals(csr.nnz());

      // Dense results on the masked weight: the yardstick for every implementation.
      sgemm(false, true, B, OUT, IN, 1.0f, x.data(), IN, w.data(), IN, 0.0f, y_ref.data(), OUT);
      sgemm(false, false, B, IN, OUT, 1.0f, dy.data(), OUT, w.data(), IN, 0.0f, dx_ref.data(), IN);
      sgemm(true, false, OUT, IN, B, 1.0f, dy.data(), OUT, x.data(), IN, 0.0f, dw_ref.data(), IN);
      const std::string at = " (" + name + ", " + std::to_string(sp) + "%)";
      onednn.forward(x.data(), w.data(), nullptr, y.data());
      validate("onednn forward" + at, y, y_ref, IN);
      onednn.backward_data(dy.data(), w.data(), dx.data());
      validate("onednn backward_data" + at, dx, dx_ref, OUT);
      onednn.backward_weights(x.data(), dy.data(), dw.data(), nullptr, false);
      validate("onednn backward_weights" + at, dw, dw_ref, B);
      csr_spmm_xwt(csr, x.data(), B, y.data(), 0.0f);
      validate("csr_spmm_xwt" + at, y, y_ref, IN);
      csr_spmm_dyw(csr_t, dy.data(), B, dx.data(), 0.0f);
      validate("csr_spmm_dyw" + at, dx, dx_ref, OUT);
      csr_sddmm_dyx(csr, dy.data(), x.data(), B, dw_vals.data(), false);
      std::vector<float> dw_at_nz(csr.nnz());
      for (int r = 0; r < OUT; ++r)
        for (int32_t k = csr.row_ptr[r]; k < csr.row_ptr[r + 1]; ++k)
          dw_at_nz[k] = dw_ref[static_cast<size_t>(r) * IN + csr.col_idx[k]];
      validate("csr_sddmm_dyx" + at, dw_vals, dw_at_nz, B);

      auto add = [&](const std::string& impl, double us, double flops, double onednn_us) {
        rows.push_back({name, sp, impl, us, flops / (us * 1e3), onednn_us / us});
        std::printf("  %-16s %3d%%  %-18s %10.1f us  %7.1f GFLOP/s  %6.2fx\n", name.c_str(), sp,
                    impl.c_str(), us, flops / (us * 1e3), onednn_us / us);
        std::fflush(stdout);
      };
      if (dense_us.empty()) {  // dense cost does not depend on the values: time it once per shape
        dense_us["fwd"] = median_us([&] { onednn.forward(x.data(), w.data(), nullptr, y.data()); }, timing);
        dense_us["bwd_data"] = median_us([&] { onednn.backward_data(dy.data(), w.data(), dx.data()); }, timing);
        dense_us["bwd_weights"] = median_us(
            [&] { onednn.backward_weights(x.data(), dy.data(), dw.data(), nullptr, false); }, timing);
        dense_us["sgemm"] = median_us([&] {
          sgemm(false, true, B, OUT, IN, 1.0f, x.data(), IN, w.data(), IN, 0.0f, y.data(), OUT);
        }, timing);
      }
      add("onednn_fwd", dense_us["fwd"], dense_flops, dense_us["fwd"]);
      add("onednn_bwd_data", dense_us["bwd_data"], dense_flops, dense_us["bwd_data"]);
      add("onednn_bwd_weights", dense_us["bwd_weights"], dense_flops, dense_us["bwd_weights"]);
      add("dense_sgemm", dense_us["sgemm"], dense_flops, dense_us["fwd"]);
      const double sparse_flops = 2.0 * static_cast<double>(csr.nnz()) * B;
      add("csr_spmm", median_us([&] { csr_spmm_xwt(csr, x.data(), B, y.data(), 0.0f); }, timing),
          sparse_flops, dense_us["fwd"]);
      add("csr_spmm_t", median_us([&] { csr_spmm_dyw(csr_t, dy.data(), B, dx.data(), 0.0f); }, timing),
          sparse_flops, dense_us["bwd_data"]);
      add("csr_sddmm", median_us([&] {
            csr_sddmm_dyx(csr, dy.data(), x.data(), B, dw_vals.data(), false);
          }, timing), sparse_flops, dense_us["bwd_weights"]);
      add("csr_refresh", median_us([&] {
            csr_update_values(csr, w.data());
            csr_transpose_values(csr, perm, csr_t);
          }, timing), 0.0, std::nan(""));
    }
  }

  if (!o.csv_path.empty()) {
    std::ostringstream csv;
    csv << "shape,sparsity,impl,median_us,gflops_effective,speedup_vs_onednn\n";
    for (const Row& r : rows)
      csv << r.shape << "," << r.sparsity << "," << r.impl << "," << fmt("%.2f", r.median_us) << ","
          << fmt("%.3f", r.gflops) << "," << (std::isnan(r.speedup) ? "" : fmt("%.4f", r.speedup))
          << "\n";
    write_file(o.csv_path, csv.str());
  }
  const std::string md = markdown(rows, shape_names, sparsities, o.threads);
  std::printf("\n%s", md.c_str());
  if (!o.md_path.empty()) write_file(o.md_path, md);
  if (!o.svg_path.empty()) write_file(o.svg_path, svg_plot(rows, shape_names));
  return 0;
}

}  // namespace st::bench
