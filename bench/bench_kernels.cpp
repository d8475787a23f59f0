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
//
// --device cuda (or cpu,cuda) adds the same passes on the GPU, on the same data, each against
// cuBLAS SGEMM (FP32) for the same dense pass — the yardstick of every CUDA row's speedup:
//   cublas_fwd / cublas_bwd_data / cublas_bwd_weights          cublasSgemm (bench/cuda_timing.h)
//   cuda_sgemm_fwd / cuda_sgemm_bwd_data / cuda_sgemm_bwd_weights   our cuda::sgemm (cuda/dense.h)
//   cuda_csr_spmm / cuda_csr_spmm_t / cuda_csr_sddmm           cuda/sparse.h (spmm_t runs on Wt)
//   cusparse_spmm / cusparse_spmm_t / cusparse_sddmm           cuda/cusparse.h
//   cuda_csr_transpose_values  csr_transpose_values (the device refresh of Wt from W after each
//                              optimizer step)
// Every GPU result is downloaded and checked against the CPU dense result (same tolerance) before
// timing; times are CUDA-event medians (bench/cuda_timing.h: warm-up, then ≥ 20 samples and
// ≥ 0.1 s; quick: ≥ 10 and 0.02 s). A real GPU only: no device fails with the reason, and the
// CUDA emulator is refused (it is for correctness, not timing). With CUDA rows the CSV gains the
// columns device and baseline (the row the speedup is relative to), and its speedup column is
// named speedup; the markdown and SVG gain a CUDA section and curves.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/aligned.h"
#include "bench/bench.h"
#include "bench/cuda_timing.h"
#include "core/check.h"
#include "core/tensor.h"
#include "experiment/svg_plot.h"
#include "cuda/cusparse.h"
#include "cuda/dense.h"
#include "cuda/runtime.h"
#include "cuda/sparse.h"
#include "kernels/csr.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
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
  double median_us, gflops, speedup;  // speedup NaN where there is no dense twin
  std::string device;                 // "cpu" | "cuda"
  std::string baseline;               // the row whose time / this time is `speedup` ("" if none)
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
template <class Got, class Want>
void validate(const std::string& what, const Got& got, const Want& want, int depth) {
  ST_ASSERT(got.size() == want.size(), what);
  const double scale = std::sqrt(static_cast<double>(std::max(depth, 1)));
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(diff <= 1e-4 * (std::fabs(static_cast<double>(want[i])) + scale)))
      ST_ASSERT(false, what, ": output ", i, " is ", got[i], ", the dense result is ", want[i]);
  }
}

Floats randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  Floats v(n);
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

using FindRow = std::function<const Row*(const std::string& shape, int sparsity, const std::string& impl)>;

// One row per shape: impl's speedup at each sparsity, and the crossover.
void speedup_table(std::ostringstream& md, const FindRow& find, const std::vector<std::string>& shapes,
                   const std::vector<int>& sparsities, const std::string& impl, const std::string& title) {
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

// One row per shape: time of impl / time of base at each sparsity.
void ratio_table(std::ostringstream& md, const FindRow& find, const std::vector<std::string>& shapes,
                 const std::vector<int>& sparsities, const std::string& impl, const std::string& base) {
  md << "\n### time of " << impl << " / time of " << base << "\n\n| shape |";
  for (int sp : sparsities) md << " " << sp << "% |";
  md << "\n|---|";
  for (size_t i = 0; i < sparsities.size(); ++i) md << "---|";
  md << "\n";
  for (const std::string& s : shapes) {
    md << "| " << s << " |";
    for (int sp : sparsities) {
      const Row *r = find(s, sp, impl), *b = find(s, sp, base);
      md << " " << (r && b ? fmt("%.2f", r->median_us / b->median_us) : "-") << " |";
    }
    md << "\n";
  }
}

// The dense medians (µs) of each shape, one column per impl.
void dense_table(std::ostringstream& md, const FindRow& find, const std::vector<std::string>& shapes,
                 int sparsity, const std::vector<std::string>& impls) {
  md << "| shape (OUTxINxB) |";
  for (const std::string& impl : impls) md << " " << impl << " |";
  md << "\n|---|";
  for (size_t i = 0; i < impls.size(); ++i) md << "---|";
  md << "\n";
  for (const std::string& s : shapes) {
    md << "| " << s;
    for (const std::string& impl : impls) {
      const Row* r = find(s, sparsity, impl);
      md << " | " << (r ? fmt("%.1f", r->median_us) : "-");
    }
    md << " |\n";
  }
}

FindRow row_finder(const std::vector<Row>& rows) {
  return [&rows](const std::string& shape, int sp, const std::string& impl) -> const Row* {
    for (const Row& r : rows)
      if (r.shape == shape && r.sparsity == sp && r.impl == impl) return &r;
    return nullptr;
  };
}

std::string markdown(const std::vector<Row>& rows, const std::vector<std::string>& shapes,
                     const std::vector<int>& sparsities, int threads) {
  const FindRow find = row_finder(rows);
  std::ostringstream md;
  md << "## CSR kernels vs dense (threads " << threads << ")\n\n";
  md << "Dense medians (µs): oneDNN forward / backward-data / backward-weights, our sgemm forward.\n\n";
  dense_table(md, find, shapes, sparsities.front(),
              {"onednn_fwd", "onednn_bwd_data", "onednn_bwd_weights", "dense_sgemm"});
  const std::pair<const char*, const char*> sparse_impls[] = {
      {"csr_spmm", "SpMM y = x·Wᵀ, speedup over oneDNN forward"},
      {"csr_spmm_t", "SpMMᵀ dx = dy·W, speedup over oneDNN backward-data"},
      {"csr_sddmm", "SDDMM dW at nonzeros, speedup over oneDNN backward-weights"},
      {"dense_sgemm", "our dense sgemm forward, speedup over oneDNN forward"}};
  for (const auto& [impl, title] : sparse_impls) speedup_table(md, find, shapes, sparsities, impl, title);
  for (const char* impl : {"csr_spmm_t", "csr_sddmm", "csr_refresh"})
    ratio_table(md, find, shapes, sparsities, impl, "csr_spmm");
  return md.str();
}

// The CUDA rows: every speedup is over cuBLAS SGEMM for the same pass.
std::string markdown_cuda(const std::vector<Row>& rows, const std::vector<std::string>& shapes,
                          const std::vector<int>& sparsities, const std::string& gpu) {
  const FindRow find = row_finder(rows);
  std::ostringstream md;
  md << "## CUDA kernels vs dense on " << gpu << " (speedups over cuBLAS)\n\n";
  md << "Every speedup in this section is cuBLAS SGEMM's time (FP32, dense on the masked weight) "
        "for the same pass divided by the implementation's time: forward y = x·Wᵀ, backward-data "
        "dx = dy·W, backward-weights dW = dyᵀ·x. Times are CUDA-event medians. In the tables \"time of "
        "cusparse_… / time of cuda_csr_…\", above 1 means our kernel is the faster.\n\n";
  md << "Dense medians (µs): cuBLAS and our cuda::sgemm, forward / backward-data / backward-weights.\n\n";
  dense_table(md, find, shapes, sparsities.front(),
              {"cublas_fwd", "cublas_bwd_data", "cublas_bwd_weights", "cuda_sgemm_fwd",
               "cuda_sgemm_bwd_data", "cuda_sgemm_bwd_weights"});
  const std::pair<const char*, const char*> impls[] = {
      {"cuda_csr_spmm", "cuda_csr_spmm: SpMM y = x·Wᵀ, speedup over cuBLAS forward"},
      {"cusparse_spmm", "cusparse_spmm: cuSPARSE SpMM y = x·Wᵀ, speedup over cuBLAS forward"},
      {"cuda_csr_spmm_t", "cuda_csr_spmm_t: SpMMᵀ dx = dy·W (on Wt), speedup over cuBLAS backward-data"},
      {"cusparse_spmm_t", "cusparse_spmm_t: cuSPARSE dx = dy·W (on Wt), speedup over cuBLAS backward-data"},
      {"cuda_csr_sddmm", "cuda_csr_sddmm: SDDMM dW at nonzeros, speedup over cuBLAS backward-weights"},
      {"cusparse_sddmm", "cusparse_sddmm: cuSPARSE SDDMM, speedup over cuBLAS backward-weights"},
      {"cuda_sgemm_fwd", "cuda_sgemm_fwd: our dense cuda::sgemm forward, speedup over cuBLAS forward"}};
  for (const auto& [impl, title] : impls) speedup_table(md, find, shapes, sparsities, impl, title);
  // Above 1: our kernel is the faster one.
  for (const auto& [impl, base] : {std::pair<const char*, const char*>{"cusparse_spmm", "cuda_csr_spmm"},
                                   {"cusparse_spmm_t", "cuda_csr_spmm_t"},
                                   {"cusparse_sddmm", "cuda_csr_sddmm"},
                                   {"cuda_csr_spmm_t", "cuda_csr_spmm"},
                                   {"cuda_csr_sddmm", "cuda_csr_spmm"},
                                   {"cuda_csr_transpose_values", "cuda_csr_spmm"}})
    ratio_table(md, find, shapes, sparsities, impl, base);
  return md.str();
}

// Speedup of SpMM over its dense baseline against sparsity, one colour per shape, log y. The CPU's
// csr_spmm (over oneDNN forward) is drawn solid; with CUDA rows, cuda_csr_spmm (dashed) and
// cusparse_spmm (dotted) over cuBLAS forward join it.
struct SpeedupCurve {
  const char* impl;
  const char* dash;  // "" = solid
  const char* label;
};

std::string dash_attr(const SpeedupCurve& c) {
  return *c.dash ? std::string(" stroke-dasharray=\"") + c.dash + "\"" : std::string();
}

// The plot area, its axes (x: sparsity %, y: speedup on a log scale over whole decades) and the
// legend column.
struct SpeedupAxes {
  double W = 860, H = 520, left = 70, right = 220, top = 40, bottom = 60;
  double lo = 0, hi = 0, span = 1;  // log10 of the y range
  double X(double sp) const { return left + (W - left - right) * sp / 100.0; }
  double Y(double s) const { return top + (H - top - bottom) * (1.0 - (std::log10(s) - lo) / span); }
  double legend_x() const { return W - right + 15; }
};

void draw_speedup_axes(experiment::SvgPlot& svg, const SpeedupAxes& a, bool cpu_only) {
  svg.text(a.left, 22,
           cpu_only ? "CSR SpMM (y = x·Wᵀ) speedup over oneDNN dense, by sparsity"
                    : "CSR SpMM (y = x·Wᵀ) speedup over dense (CPU: oneDNN, CUDA: cuBLAS), by sparsity",
           "font-size=\"15\"");
  for (double v : experiment::ticks_125(std::pow(10.0, a.lo), std::pow(10.0, a.hi))) {
    const bool decade = std::abs(std::log10(v) - std::round(std::log10(v))) < 1e-9;
    svg.line(a.left, a.Y(v), a.W - a.right, a.Y(v), decade ? "stroke=\"#bbb\"" : "stroke=\"#eee\"");
    std::ostringstream label;
    label << v << "×";
    svg.text(a.left - 6, a.Y(v) + 4, label.str(), "text-anchor=\"end\"");
  }
  svg.line(a.left, a.Y(1.0), a.W - a.right, a.Y(1.0), "stroke=\"black\" stroke-dasharray=\"4 3\"");
  for (int sp = 0; sp <= 100; sp += 10) {
    svg.line(a.X(sp), a.top, a.X(sp), a.H - a.bottom, "stroke=\"#eee\"");
    svg.text(a.X(sp), a.H - a.bottom + 18, std::to_string(sp) + "%", "text-anchor=\"middle\"");
  }
  svg.rect(a.left, a.top, a.W - a.left - a.right, a.H - a.top - a.bottom, "fill=\"none\" stroke=\"black\"");
  svg.text((a.left + a.W - a.right) / 2, a.H - 15, "sparsity", "text-anchor=\"middle\"");
  svg.raw("<text transform=\"translate(18," + experiment::svg_number((a.top + a.H - a.bottom) / 2) +
          ") rotate(-90)\" text-anchor=\"middle\">speedup vs " + (cpu_only ? "oneDNN" : "dense") + " (log)</text>\n");
}

std::string svg_plot(const std::vector<Row>& rows, const std::vector<std::string>& shapes) {
  const SpeedupCurve all_curves[] = {{"csr_spmm", "", "CPU csr_spmm / oneDNN"},
                                     {"cuda_csr_spmm", "7 4", "CUDA cuda_csr_spmm / cuBLAS"},
                                     {"cusparse_spmm", "2 3", "CUDA cusparse_spmm / cuBLAS"}};
  std::vector<SpeedupCurve> curves;
  for (const SpeedupCurve& c : all_curves)
    if (std::any_of(rows.begin(), rows.end(), [&](const Row& r) { return r.impl == c.impl; }))
      curves.push_back(c);
  const bool cpu_only = curves.size() == 1 && std::string(curves[0].impl) == "csr_spmm";
  auto plotted = [&](const Row& r) {
    for (const SpeedupCurve& c : curves)
      if (r.impl == c.impl) return r.speedup > 0;
    return false;
  };
  double ymin = 1.0, ymax = 1.0;
  for (const Row& r : rows)
    if (plotted(r)) {
      ymin = std::min(ymin, r.speedup);
      ymax = std::max(ymax, r.speedup);
    }
  SpeedupAxes a;
  a.lo = std::floor(std::log10(ymin));
  a.hi = std::ceil(std::log10(ymax));
  a.span = std::max(a.hi - a.lo, 1.0);
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  experiment::SvgPlot svg(a.W, a.H, "font-family=\"sans-serif\" font-size=\"12\"");
  draw_speedup_axes(svg, a, cpu_only);
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string color = colors[i % 10];
    for (const SpeedupCurve& c : curves) {
      std::vector<std::pair<double, double>> pts;
      for (const Row& r : rows)
        if (r.impl == c.impl && r.shape == shapes[i] && r.speedup > 0) pts.emplace_back(a.X(r.sparsity), a.Y(r.speedup));
      svg.polyline(pts, "fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"" + dash_attr(c));
      for (const auto& [x, y] : pts) svg.circle(x, y, 3, "fill=\"" + color + "\"");
    }
    svg.legend_row(a.legend_x(), a.top + 10 + 20.0 * i, "stroke=\"" + color + "\" stroke-width=\"2\"", "", shapes[i]);
  }
  if (!cpu_only)  // which line style is which implementation, below the shapes
    for (size_t j = 0; j < curves.size(); ++j)
      svg.legend_row(a.legend_x(), a.top + 10 + 20.0 * (shapes.size() + 1 + j),
                     "stroke=\"black\" stroke-width=\"2\"" + dash_attr(curves[j]), "", curves[j].label,
                     "font-size=\"10\"");
  return svg.finish();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  ST_CHECK(f.good(), "cannot write ", path);
  f << text;
  ST_CHECK(f.good(), "cannot write ", path);
}

// One (shape, sparsity) point: the host operands, W's CSR and its transpose, and the dense results
// on the masked weight that every implementation is checked against.
struct Point {
  std::string name, at;  // "1024x1024x128", " (1024x1024x128, 90%)"
  int sparsity, OUT, IN, B;
  const Floats& x;   // (B, IN)
  const Floats& dy;  // (B, OUT)
  const Floats& w;   // (OUT, IN), zeros off the mask
  const CsrMatrix& csr;          // W
  const CsrMatrix& csr_t;        // Wᵀ, csr_t.values[p] = csr.values[perm[p]]
  const std::vector<int32_t>& perm;
  const Floats& y_ref;     // (B, OUT)
  const Floats& dx_ref;    // (B, IN)
  const Floats& dw_ref;    // (OUT, IN)
  const Floats& dw_at_nz;  // (nnz) dw_ref at W's nonzeros
};

using AddRow = std::function<void(const std::string& impl, double us, double flops,
                                  double baseline_us, const std::string& baseline)>;

// Device arrays that free themselves (DeviceCsr and the index arrays are plain views otherwise).
struct OwnedDeviceCsr {
  cuda::DeviceCsr d;
  explicit OwnedDeviceCsr(const CsrMatrix& a) : d(cuda::device_csr_upload(a)) {}
  ~OwnedDeviceCsr() { cuda::device_csr_free(d); }
  OwnedDeviceCsr(const OwnedDeviceCsr&) = delete;
  OwnedDeviceCsr& operator=(const OwnedDeviceCsr&) = delete;
};
template <class T>
struct OwnedDeviceArray {
  T* p;
  int64_t n;
  ~OwnedDeviceArray() { cuda::device_free(p, static_cast<size_t>(n) * sizeof(T)); }
  OwnedDeviceArray(const OwnedDeviceArray&) = delete;
  OwnedDeviceArray& operator=(const OwnedDeviceArray&) = delete;
};

Tensor upload(const Floats& v) {
  return Tensor::from_vector({static_cast<int64_t>(v.size())}, std::vector<float>(v.begin(), v.end()))
      .to(Device::cuda);
}

// The CUDA rows of one point: every implementation runs once and its downloaded result is checked
// against the CPU dense result, then each is timed. The dense passes (cuBLAS, cuda::sgemm) do not
// depend on the sparsity: they are timed at the shape's first point (dense_us empty) and reused.
void cuda_point(const Point& p, gpu::Cublas& cublas, gpu::Timing timing,
                std::map<std::string, double>& dense_us, const AddRow& add) {
  const int OUT = p.OUT, IN = p.IN, B = p.B;
  const Tensor x = upload(p.x), dy = upload(p.dy), w = upload(p.w);
  Tensor y({static_cast<int64_t>(B) * OUT}, DType::f32, Device::cuda);
  Tensor dx({static_cast<int64_t>(B) * IN}, DType::f32, Device::cuda);
  Tensor dw({static_cast<int64_t>(OUT) * IN}, DType::f32, Device::cuda);
  const int64_t nnz = p.csr.nnz();
  OwnedDeviceCsr W(p.csr), Wt(p.csr_t);
  const OwnedDeviceArray<int32_t> perm{cuda::device_upload_i32(p.perm.data(), nnz), nnz};
  Tensor dw_vals({std::max<int64_t>(nnz, 1)}, DType::f32, Device::cuda);
  auto dw_vals_host = [&] {
    std::vector<float> v = dw_vals.to_vector();
    v.resize(nnz);
    return v;
  };

  // The passes, each as one call on device pointers.
  float *xd = x.cuda_f32(), *dyd = dy.cuda_f32(), *wd = w.cuda_f32();
  float *yd = y.cuda_f32(), *dxd = dx.cuda_f32(), *dwd = dw.cuda_f32();
  float* dwv = nnz ? dw_vals.cuda_f32() : nullptr;
  auto cublas_fwd = [&] { cublas.sgemm(false, true, B, OUT, IN, xd, IN, wd, IN, yd, OUT); };
  auto cublas_bwd_data = [&] { cublas.sgemm(false, false, B, IN, OUT, dyd, OUT, wd, IN, dxd, IN); };
  auto cublas_bwd_weights = [&] { cublas.sgemm(true, false, OUT, IN, B, dyd, OUT, xd, IN, dwd, IN); };
  auto sgemm_fwd = [&] { cuda::sgemm(false, true, B, OUT, IN, 1.0f, xd, IN, wd, IN, 0.0f, yd, OUT); };
  auto sgemm_bwd_data = [&] {
    cuda::sgemm(false, false, B, IN, OUT, 1.0f, dyd, OUT, wd, IN, 0.0f, dxd, IN);
  };
  auto sgemm_bwd_weights = [&] {
    cuda::sgemm(true, false, OUT, IN, B, 1.0f, dyd, OUT, xd, IN, 0.0f, dwd, IN);
  };
  auto spmm = [&] { cuda::csr_spmm_xwt(W.d, xd, B, yd, 0.0f); };
  auto spmm_t = [&] { cuda::csr_spmm_dyw(Wt.d, dyd, B, dxd, 0.0f); };
  auto sddmm = [&] { cuda::csr_sddmm_dyx(W.d, dyd, xd, B, dwv, false); };
  auto cus_spmm = [&] { cuda::cusparse::csr_spmm_xwt(W.d, xd, B, yd, 0.0f); };
  auto cus_spmm_t = [&] { cuda::cusparse::csr_spmm_dyw(Wt.d, dyd, B, dxd, 0.0f); };
  auto cus_sddmm = [&] { cuda::cusparse::csr_sddmm_dyx(W.d, dyd, xd, B, dwv, false); };
  auto transpose_values = [&] { cuda::csr_transpose_values(W.d, perm.p, Wt.d); };

  // Validate everything before timing anything. Outputs are filled with NaN first, so a pass that
  // writes nothing cannot pass on the previous one's result.
  const std::string at = p.at + " on the GPU";
  auto check = [&](const std::string& what, const std::function<void()>& run, Tensor& out,
                   const Floats& want, int depth) {
    out.fill_(std::nanf(""));
    run();
    validate(what + at, out.to_vector(), want, depth);
  };
  check("cublas forward", cublas_fwd, y, p.y_ref, IN);
  check("cublas backward_data", cublas_bwd_data, dx, p.dx_ref, OUT);
  check("cublas backward_weights", cublas_bwd_weights, dw, p.dw_ref, B);
  check("cuda::sgemm forward", sgemm_fwd, y, p.y_ref, IN);
  check("cuda::sgemm backward_data", sgemm_bwd_data, dx, p.dx_ref, OUT);
  check("cuda::sgemm backward_weights", sgemm_bwd_weights, dw, p.dw_ref, B);
  check("cuda::csr_spmm_xwt", spmm, y, p.y_ref, IN);
  check("cuda::csr_spmm_dyw", spmm_t, dx, p.dx_ref, OUT);
  check("cusparse::csr_spmm_xwt", cus_spmm, y, p.y_ref, IN);
  check("cusparse::csr_spmm_dyw", cus_spmm_t, dx, p.dx_ref, OUT);
  dw_vals.fill_(std::nanf(""));
  sddmm();
  validate("cuda::csr_sddmm_dyx" + at, dw_vals_host(), p.dw_at_nz, B);
  dw_vals.fill_(std::nanf(""));
  cus_sddmm();
  validate("cusparse::csr_sddmm_dyx" + at, dw_vals_host(), p.dw_at_nz, B);
  transpose_values();  // Wt's values are already current: the refresh must reproduce them exactly
  const CsrMatrix wt_back = cuda::device_csr_download(Wt.d);
  ST_ASSERT(wt_back.values == p.csr_t.values, "cuda::csr_transpose_values", at,
            ": Wt's values differ from the host CSR's transpose");

  const double dense_flops = 2.0 * OUT * IN * B;
  if (dense_us.empty()) {
    dense_us["fwd"] = gpu::median_us(cublas_fwd, timing);
    dense_us["bwd_data"] = gpu::median_us(cublas_bwd_data, timing);
    dense_us["bwd_weights"] = gpu::median_us(cublas_bwd_weights, timing);
    dense_us["sgemm_fwd"] = gpu::median_us(sgemm_fwd, timing);
    dense_us["sgemm_bwd_data"] = gpu::median_us(sgemm_bwd_data, timing);
    dense_us["sgemm_bwd_weights"] = gpu::median_us(sgemm_bwd_weights, timing);
  }
  const double fwd = dense_us["fwd"], bwd_data = dense_us["bwd_data"], bwd_w = dense_us["bwd_weights"];
  add("cublas_fwd", fwd, dense_flops, fwd, "cublas_fwd");
  add("cublas_bwd_data", bwd_data, dense_flops, bwd_data, "cublas_bwd_data");
  add("cublas_bwd_weights", bwd_w, dense_flops, bwd_w, "cublas_bwd_weights");
  add("cuda_sgemm_fwd", dense_us["sgemm_fwd"], dense_flops, fwd, "cublas_fwd");
  add("cuda_sgemm_bwd_data", dense_us["sgemm_bwd_data"], dense_flops, bwd_data, "cublas_bwd_data");
  add("cuda_sgemm_bwd_weights", dense_us["sgemm_bwd_weights"], dense_flops, bwd_w, "cublas_bwd_weights");
  const double sparse_flops = 2.0 * static_cast<double>(nnz) * B;
  add("cuda_csr_spmm", gpu::median_us(spmm, timing), sparse_flops, fwd, "cublas_fwd");
  add("cusparse_spmm", gpu::median_us(cus_spmm, timing), sparse_flops, fwd, "cublas_fwd");
  add("cuda_csr_spmm_t", gpu::median_us(spmm_t, timing), sparse_flops, bwd_data, "cublas_bwd_data");
  add("cusparse_spmm_t", gpu::median_us(cus_spmm_t, timing), sparse_flops, bwd_data, "cublas_bwd_data");
  add("cuda_csr_sddmm", gpu::median_us(sddmm, timing), sparse_flops, bwd_w, "cublas_bwd_weights");
  add("cusparse_sddmm", gpu::median_us(cus_sddmm, timing), sparse_flops, bwd_w, "cublas_bwd_weights");
  add("cuda_csr_transpose_values", gpu::median_us(transpose_values, timing), 0.0, std::nan(""), "");
}

std::string csv_text(const std::vector<Row>& rows) {
  std::ostringstream csv;
  const bool with_cuda =
      std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.device != "cpu"; });
  if (!with_cuda) {  // the CPU-only format, unchanged
    csv << "shape,sparsity,impl,median_us,gflops_effective,speedup_vs_onednn\n";
    for (const Row& r : rows)
      csv << r.shape << "," << r.sparsity << "," << r.impl << "," << fmt("%.2f", r.median_us) << ","
          << fmt("%.3f", r.gflops) << "," << (std::isnan(r.speedup) ? "" : fmt("%.4f", r.speedup))
          << "\n";
    return csv.str();
  }
  csv << "shape,sparsity,device,impl,median_us,gflops_effective,speedup,baseline\n";
  for (const Row& r : rows)
    csv << r.shape << "," << r.sparsity << "," << r.device << "," << r.impl << ","
        << fmt("%.2f", r.median_us) << "," << fmt("%.3f", r.gflops) << ","
        << (std::isnan(r.speedup) ? "" : fmt("%.4f", r.speedup)) << "," << r.baseline << "\n";
  return csv.str();
}

}  // namespace

int bench_kernels(const KernelBenchOptions& o) {
  bool on_cpu = false, on_cuda = false;
  for (const std::string& d : o.devices) {
    ST_CHECK(d == "cpu" || d == "cuda", "--device: expected cpu and/or cuda, got \"", d, "\"");
    (d == "cpu" ? on_cpu : on_cuda) = true;
  }
  ST_CHECK(on_cpu || on_cuda, "--device: give cpu, cuda or cpu,cuda");
  // First, before any work: is there a GPU worth timing?
  const std::string gpu_name = on_cuda ? gpu::require_timing_device("bench kernels --device cuda") : "";
  if (on_cpu)
    std::printf("CPU rows: %d threads, cpu kernels %s, oneDNN %s\n", o.threads,
                kernels::isa_name(kernels::active_isa()), kernels::onednn_isa_name().c_str());
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
  const gpu::Timing gpu_timing = o.quick ? gpu::Timing{0.02, 10} : gpu::Timing{0.1, 20};
  std::unique_ptr<gpu::Cublas> cublas;
  if (on_cuda) {
    cublas = std::make_unique<gpu::Cublas>();
    std::printf("CUDA rows on %s; their speedups are over cuBLAS SGEMM for the same pass\n",
                gpu_name.c_str());
  }

  std::vector<Row> rows;
  std::vector<std::string> shape_names;
  std::mt19937 rng(1234);
  for (const LinearShape& sh : shapes) {
    const int OUT = sh.out, IN = sh.in, B = sh.batch;
    const std::string name = sh.name();
    shape_names.push_back(name);
    // Operands 64-byte aligned like the trainer's tensors (bench/aligned.h says why).
    const Floats x = randn(static_cast<size_t>(B) * IN, rng);
    const Floats dy = randn(static_cast<size_t>(B) * OUT, rng);
    const Floats w_full = randn(static_cast<size_t>(OUT) * IN, rng);
    const double dense_flops = 2.0 * OUT * IN * B;
    Floats y(static_cast<size_t>(B) * OUT), dx(static_cast<size_t>(B) * IN),
        dw(static_cast<size_t>(OUT) * IN), y_ref = y, dx_ref = dx, dw_ref = dw;
    std::unique_ptr<OnednnLinear> onednn_ptr;
    if (on_cpu) onednn_ptr = std::make_unique<OnednnLinear>(B, IN, OUT, false);
    std::map<std::string, double> dense_us, cuda_dense_us;
    for (int sp : sparsities) {
      std::vector<uint8_t> mask(w_full.size());
      std::uniform_real_distribution<double> u(0.0, 1.0);
      Floats w = w_full;
      for (size_t i = 0; i < w.size(); ++i) {
        mask[i] = u(rng) >= sp / 100.0;
        if (!mask[i]) w[i] = 0.0f;
      }
      CsrMatrix csr = csr_from_dense(w.data(), mask.data(), OUT, IN);
      std::vector<int32_t> perm;
      CsrMatrix csr_t = csr_transpose(csr, perm);
      Floats dw_vals(csr.nnz());

      // Dense results on the masked weight: the yardstick for every implementation.
      sgemm(false, true, B, OUT, IN, 1.0f, x.data(), IN, w.data(), IN, 0.0f, y_ref.data(), OUT);
      sgemm(false, false, B, IN, OUT, 1.0f, dy.data(), OUT, w.data(), IN, 0.0f, dx_ref.data(), IN);
      sgemm(true, false, OUT, IN, B, 1.0f, dy.data(), OUT, x.data(), IN, 0.0f, dw_ref.data(), IN);
      Floats dw_at_nz(csr.nnz());
      for (int r = 0; r < OUT; ++r)
        for (int32_t k = csr.row_ptr[r]; k < csr.row_ptr[r + 1]; ++k)
          dw_at_nz[k] = dw_ref[static_cast<size_t>(r) * IN + csr.col_idx[k]];
      const std::string at = " (" + name + ", " + std::to_string(sp) + "%)";

      auto add_row = [&](const std::string& device, const std::string& impl, double us, double flops,
                         double baseline_us, const std::string& baseline) {
        rows.push_back({name, sp, impl, us, flops / (us * 1e3), baseline_us / us, device, baseline});
        const int impl_width = device == "cpu" ? 18 : 22;  // the CUDA rows have longer names
        std::printf("  %-16s %3d%%  %-*s %10.1f us  %7.1f GFLOP/s  %6.2fx\n", name.c_str(), sp,
                    impl_width, impl.c_str(), us, flops / (us * 1e3), baseline_us / us);
        std::fflush(stdout);
      };
      if (on_cpu) {
        OnednnLinear& onednn = *onednn_ptr;
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
        validate("csr_sddmm_dyx" + at, dw_vals, dw_at_nz, B);

        auto add = [&](const std::string& impl, double us, double flops, double onednn_us,
                       const std::string& baseline) {
          add_row("cpu", impl, us, flops, onednn_us, baseline);
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
        add("onednn_fwd", dense_us["fwd"], dense_flops, dense_us["fwd"], "onednn_fwd");
        add("onednn_bwd_data", dense_us["bwd_data"], dense_flops, dense_us["bwd_data"], "onednn_bwd_data");
        add("onednn_bwd_weights", dense_us["bwd_weights"], dense_flops, dense_us["bwd_weights"],
            "onednn_bwd_weights");
        add("dense_sgemm", dense_us["sgemm"], dense_flops, dense_us["fwd"], "onednn_fwd");
        const double sparse_flops = 2.0 * static_cast<double>(csr.nnz()) * B;
        add("csr_spmm", median_us([&] { csr_spmm_xwt(csr, x.data(), B, y.data(), 0.0f); }, timing),
            sparse_flops, dense_us["fwd"], "onednn_fwd");
        add("csr_spmm_t", median_us([&] { csr_spmm_dyw(csr_t, dy.data(), B, dx.data(), 0.0f); }, timing),
            sparse_flops, dense_us["bwd_data"], "onednn_bwd_data");
        add("csr_sddmm", median_us([&] {
              csr_sddmm_dyx(csr, dy.data(), x.data(), B, dw_vals.data(), false);
            }, timing), sparse_flops, dense_us["bwd_weights"], "onednn_bwd_weights");
        add("csr_refresh", median_us([&] {
              csr_update_values(csr, w.data());
              csr_transpose_values(csr, perm, csr_t);
            }, timing), 0.0, std::nan(""), "");
      }
      if (on_cuda) {
        const Point point{name, at, sp, OUT, IN, B, x, dy, w, csr, csr_t, perm,
                          y_ref, dx_ref, dw_ref, dw_at_nz};
        cuda_point(point, *cublas, gpu_timing, cuda_dense_us,
                   [&](const std::string& impl, double us, double flops, double base_us,
                       const std::string& baseline) {
                     add_row("cuda", impl, us, flops, base_us, baseline);
                   });
      }
    }
  }

  if (!o.csv_path.empty()) write_file(o.csv_path, csv_text(rows));
  std::string md;
  if (on_cpu) md += markdown(rows, shape_names, sparsities, o.threads);
  if (on_cuda) md += (on_cpu ? "\n" : "") + markdown_cuda(rows, shape_names, sparsities, gpu_name);
  std::printf("\n%s", md.c_str());
  if (!o.md_path.empty()) write_file(o.md_path, md);
  if (!o.svg_path.empty()) write_file(o.svg_path, svg_plot(rows, shape_names));
  return 0;
}

}  // namespace st::bench
