// experiment/sweep_report.cpp — curve.csv, curve.md and a hand-written curve.svg for a sweep.
#include "experiment/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "experiment/atomic_file.h"
#include "experiment/svg_plot.h"

namespace st::experiment {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string number_text(double v) { return json(v).dump(); }

// "50%", "5%", "0.5%": a fraction as a short percentage.
std::string percent_text(double fraction) { return fmt("%.4g", fraction * 100) + "%"; }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

const PointResult* find_result(const std::vector<PointResult>& results, const std::string& method, double sparsity) {
  for (const auto& r : results)
    if (!r.dense && r.method == method && r.sparsity == sparsity) return &r;
  return nullptr;
}

const PointResult* dense_result(const std::vector<PointResult>& results) {
  for (const auto& r : results)
    if (r.dense) return &r;
  return nullptr;
}

const char* const kCsvColumns[] = {"method", "sparsity", "fraction_remaining", "test_accuracy", "test_error",
                                   "best_val_accuracy", "epochs", "seconds", "run_dir"};

// The CSV column of a summary.json field: its name, unless a fixed column has it already
// ("sparsity" measured by the run is "actual_sparsity"; the nominal one is the sweep's).
std::string extra_column(const std::string& key) {
  if (key == "sparsity") return "actual_sparsity";
  for (const char* c : kCsvColumns)
    if (key == c) return "summary_" + key;
  return key;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string curve_csv(const std::vector<PointResult>& results) {
  std::vector<std::string> extra_keys;  // union, "sparsity" (the measured one) first, then by name
  for (const auto& r : results)
    for (const auto& item : r.extra.items())
      if (std::find(extra_keys.begin(), extra_keys.end(), item.key()) == extra_keys.end())
        extra_keys.push_back(item.key());
  std::sort(extra_keys.begin(), extra_keys.end(), [](const std::string& a, const std::string& b) {
    return (a == "sparsity") != (b == "sparsity") ? a == "sparsity" : a < b;
  });
  std::ostringstream out;
  out << "method,sparsity,fraction_remaining,test_accuracy,test_error,best_val_accuracy,epochs,seconds,run_dir";
  for (const auto& k : extra_keys) out << "," << csv_field(extra_column(k));
  out << "\n";
  for (const auto& r : results) {
    out << csv_field(r.method) << "," << number_text(r.sparsity) << "," << fmt("%.6g", 1 - r.sparsity) << ","
        << fmt("%.6g", r.test_accuracy) << "," << fmt("%.6g", 1 - r.test_accuracy) << ","
        << (r.best_val_accuracy >= 0 ? fmt("%.6g", r.best_val_accuracy) : "") << "," << r.epochs << ","
        << fmt("%.2f", r.seconds) << "," << csv_field(r.run_dir);
    for (const auto& k : extra_keys) {
      out << ",";
      auto it = r.extra.find(k);
      if (it == r.extra.end()) continue;
      out << csv_field(it->is_string() ? it->get<std::string>() : it->dump());
    }
    out << "\n";
  }
  return out.str();
}

std::string curve_markdown(const SweepConfig& sweep, const std::vector<PointResult>& results) {
  std::ostringstream out;
  out << "# " << sweep.name << "\n\n";
  if (!sweep.description.empty()) out << sweep.description << "\n\n";
  out << "Test accuracy (%) by sparsity (fraction of weights pruned, `" << sweep.sparsity_key
      << "`) and method. The best of each row is bold; \"–\" = not run yet.\n\n";
  out << "| sparsity | remaining |";
  for (const auto& m : sweep.methods) out << " " << m.name << " |";
  out << "\n|---:|---:|";
  for (size_t i = 0; i < sweep.methods.size(); ++i) out << "---:|";
  out << "\n";
  for (double s : sweep.sparsities) {
    double best = -1;
    int filled = 0;
    for (const auto& m : sweep.methods)
      if (const PointResult* r = find_result(results, m.name, s)) best = std::max(best, r->test_accuracy), ++filled;
    out << "| " << number_text(s) << " | " << percent_text(1 - s) << " |";
    for (const auto& m : sweep.methods) {
      const PointResult* r = find_result(results, m.name, s);
      if (!r) {
        out << " – |";
        continue;
      }
      const std::string cell = fmt("%.2f", 100 * r->test_accuracy);
      out << " " << (r->test_accuracy == best && filled > 1 ? "**" + cell + "**" : cell) << " |";
    }
    out << "\n";
  }
  out << "\n";
  if (const PointResult* d = dense_result(results)) {
    out << "Dense baseline (no pruning): **" << fmt("%.2f", 100 * d->test_accuracy) << "%** (`" << d->run_dir << "`)\n";
  } else if (sweep.dense_baseline) {
    out << "Dense baseline (no pruning): not run yet\n";
  }
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// The plot. Layout (px): a 760×500 canvas, the plot area on the left, the legend on its right.

namespace {

const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
constexpr int kNumColors = sizeof(kColors) / sizeof(kColors[0]);
const char* const kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
const char* const kDenseStyle = "stroke=\"#444444\" stroke-width=\"1.6\" stroke-dasharray=\"7 5\"";

// A marker of shape (index % 5) centred at (x, y): circle, square, triangle, diamond, inverted triangle.
// Hollow: a point below the y axis, drawn on the bottom edge.
std::string marker(int shape, double x, double y, const char* color, const std::string& tooltip, bool hollow = false) {
  const double r = 4.2;
  std::ostringstream m;
  const std::string style = hollow ? std::string(" fill=\"#ffffff\" stroke=\"") + color + "\" stroke-width=\"1.8\""
                                   : std::string(" fill=\"") + color + "\" stroke=\"#ffffff\" stroke-width=\"1.2\"";
  auto pt = [](double a, double b) { return svg_number(a) + "," + svg_number(b); };
  switch (shape % 5) {
    case 0: m << "<circle cx=\"" << svg_number(x) << "\" cy=\"" << svg_number(y) << "\" r=\"" << r << "\"" << style; break;
    case 1: m << "<rect x=\"" << svg_number(x - r) << "\" y=\"" << svg_number(y - r) << "\" width=\"" << 2 * r
              << "\" height=\"" << 2 * r << "\"" << style; break;
    case 2: m << "<polygon points=\"" << pt(x, y - 1.25 * r) << " " << pt(x + 1.2 * r, y + 0.9 * r) << " "
              << pt(x - 1.2 * r, y + 0.9 * r) << "\"" << style; break;
    case 3: m << "<polygon points=\"" << pt(x, y - 1.35 * r) << " " << pt(x + 1.35 * r, y) << " " << pt(x, y + 1.35 * r)
              << " " << pt(x - 1.35 * r, y) << "\"" << style; break;
    default: m << "<polygon points=\"" << pt(x, y + 1.25 * r) << " " << pt(x + 1.2 * r, y - 0.9 * r) << " "
               << pt(x - 1.2 * r, y - 0.9 * r) << "\"" << style; break;
  }
  if (tooltip.empty()) return m.str() + "/>";
  return m.str() + "><title>" + xml_escape(tooltip) + "</title></" +
         (shape % 5 == 0 ? "circle" : shape % 5 == 1 ? "rect" : "polygon") + ">";
}

// The plot area and its two axes: x the fraction of weights remaining (log scale, from a 1-2-5 value
// at or below the smallest), y the accuracy % (a nice step for the data's range; 0..100 with no data).
struct CurveAxes {
  double W = 760, H = 500;
  double left = 74, top = 62, right = 760 - 196, bottom = 500 - 66;
  double x_lo = 1, lx_lo = 0, pad = 0;
  double y_lo = 0, y_hi = 100, step = 10;
  std::vector<double> y_ticks;
  std::string y_format;

  double X(double frac) const {
    const double lx_hi = 0;
    return left + (std::log10(frac) - (lx_lo - pad)) / ((lx_hi + pad) - (lx_lo - pad)) * (right - left);
  }
  // A little room inside the frame above and below the extreme ticks, so markers are never cut.
  // Below the axis: the bottom edge.
  double Y(double pct) const {
    if (pct < y_lo) return bottom;
    const double inset = 0.035 * (bottom - top);
    return bottom - inset - (pct - y_lo) / (y_hi - y_lo) * (bottom - top - 2 * inset);
  }
  std::string y_label(double v) const { return fmt(y_format.c_str(), v); }
};

void set_x_axis(CurveAxes& a, const SweepConfig& sweep, const std::vector<PointResult>& results) {
  double min_frac = 1;
  for (double s : sweep.sparsities) min_frac = std::min(min_frac, 1 - s);
  for (const auto& r : results) min_frac = std::min(min_frac, 1 - r.sparsity);
  min_frac = std::max(min_frac, 1e-6);
  a.x_lo = 1;
  for (double v : ticks_125(1e-6, 1))
    if (v <= min_frac * 1.0001) a.x_lo = v;
  if (a.x_lo >= 1) a.x_lo = 0.1;
  a.lx_lo = std::log10(a.x_lo);
  a.pad = 0.04 * (0 - a.lx_lo);
}

void set_y_axis(CurveAxes& a, const std::vector<PointResult>& results) {
  double y_min = 1e9, y_max = -1e9;
  for (const auto& r : results) {
    y_min = std::min(y_min, 100 * r.test_accuracy);
    y_max = std::max(y_max, 100 * r.test_accuracy);
  }
  // One collapsed run (one-shot at 99% can fall to chance) must not flatten every other curve: the
  // axis shows at most kZoomWindow points below the best result; lower ones sit on the bottom edge.
  constexpr double kZoomWindow = 15;
  if (y_max - y_min > kZoomWindow) y_min = y_max - kZoomWindow;
  if (!results.empty()) {
    const double span = std::max(y_max - y_min, 0.5), margin = 0.08 * span;
    for (double st : {0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0}) {
      a.step = st;
      if ((span + 2 * margin) / st <= 7) break;
    }
    a.y_lo = std::max(0.0, std::floor((y_min - margin) / a.step) * a.step);
    a.y_hi = std::min(100.0, std::ceil((y_max + margin) / a.step) * a.step);
    if (a.y_hi - a.y_lo < a.step) a.y_hi = a.y_lo + a.step;
  }
  const int decimals = a.step == std::floor(a.step) ? 0 : a.step * 10 == std::floor(a.step * 10) ? 1 : 2;
  a.y_format = "%." + std::to_string(decimals) + "f";
  for (int k = 0; a.y_lo + k * a.step <= a.y_hi + 1e-9; ++k) a.y_ticks.push_back(a.y_lo + k * a.step);
}

void draw_titles(SvgPlot& svg, const CurveAxes& a, const std::string& name) {
  const double mid = (a.left + a.right) / 2;
  svg.text(mid, 28, name, "text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\" fill=\"#222222\"");
  svg.text(mid, 47, "test accuracy vs. fraction of weights remaining",
           "text-anchor=\"middle\" font-size=\"12\" fill=\"#666666\"");
  svg.rect(a.left, a.top, a.right - a.left, a.bottom - a.top, "fill=\"#fafafa\" stroke=\"none\"");
}

// Grid lines (minor x lines lighter), tick labels, the frame and the axis titles.
void draw_grid(SvgPlot& svg, const CurveAxes& a) {
  svg.raw("<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
  for (int e = -6; e <= 0; ++e)
    for (int m = 1; m <= 9; ++m) {
      const double v = m * std::pow(10.0, e);
      if (v < a.x_lo * 0.999 || v > 1.0001) continue;
      const bool major = m == 1 || m == 2 || m == 5;
      svg.line(a.X(v), a.top, a.X(v), a.bottom, major ? "" : "stroke=\"#f0f0f0\"");
    }
  for (double v : a.y_ticks) svg.line(a.left, a.Y(v), a.right, a.Y(v));
  svg.raw("</g>\n<g font-size=\"12\" fill=\"#333333\">\n");
  for (double v : ticks_125(a.x_lo, 1)) svg.text(a.X(v), a.bottom + 18, percent_text(v), "text-anchor=\"middle\"");
  for (double v : a.y_ticks) svg.text(a.left - 8, a.Y(v) + 4, a.y_label(v), "text-anchor=\"end\"");
  svg.raw("</g>\n");
  svg.rect(a.left, a.top, a.right - a.left, a.bottom - a.top, "fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"");
  svg.text((a.left + a.right) / 2, a.H - 22, "fraction of weights remaining (log scale)",
           "text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\"");
  svg.raw("<text transform=\"translate(22," + svg_number((a.top + a.bottom) / 2) +
          ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\">test accuracy (%)</text>\n");
}

// The dense baseline: a dashed reference line with its value at the right end.
void draw_dense(SvgPlot& svg, const CurveAxes& a, const PointResult& dense) {
  const double y = a.Y(100 * dense.test_accuracy);
  const std::string value = fmt("%.2f", 100 * dense.test_accuracy) + "%";
  svg.raw("<line class=\"dense\" x1=\"" + svg_number(a.left) + "\" y1=\"" + svg_number(y) + "\" x2=\"" +
          svg_number(a.right) + "\" y2=\"" + svg_number(y) + "\" " + kDenseStyle + "><title>dense baseline: " +
          value + "</title></line>\n");
  const double label_y = y - a.top < 18 ? y + 15 : y - 6;  // below the line when it runs along the top
  svg.text(a.right - 6, label_y, "dense " + value, "text-anchor=\"end\" font-size=\"11\" fill=\"#444444\"");
}

// One method's polyline (empty until its first point finishes), markers on top. Returns whether a
// point fell below the y axis.
bool draw_method(SvgPlot& svg, const CurveAxes& a, size_t i, const std::string& method,
                 const std::vector<PointResult>& results) {
  const char* color = kColors[i % kNumColors];
  std::vector<const PointResult*> pts;
  for (const auto& r : results)
    if (!r.dense && r.method == method) pts.push_back(&r);
  std::sort(pts.begin(), pts.end(), [](const PointResult* x, const PointResult* y) { return x->sparsity > y->sparsity; });
  std::vector<std::pair<double, double>> line;
  for (const PointResult* r : pts) line.emplace_back(a.X(1 - r->sparsity), a.Y(100 * r->test_accuracy));
  svg.raw("<g class=\"method\" data-method=\"" + xml_escape(method) + "\">\n");
  svg.polyline(line, std::string("class=\"curve\" fill=\"none\" stroke=\"") + color +
                         "\" stroke-width=\"2.2\" stroke-linejoin=\"round\"");
  bool any_clipped = false;
  for (const PointResult* r : pts) {
    const double pct = 100 * r->test_accuracy, x = a.X(1 - r->sparsity);
    const bool clipped = pct < a.y_lo;
    svg.raw(marker(static_cast<int>(i), x, a.Y(pct), color,
                   method + ", sparsity " + number_text(r->sparsity) + ": " + fmt("%.2f", pct) + "%", clipped) +
            "\n");
    if (!clipped) continue;
    any_clipped = true;
    svg.text(x + 7, a.bottom - 6, fmt("%.1f", pct) + "%", std::string("font-size=\"10\" fill=\"") + color + "\"");
  }
  svg.raw("</g>\n");
  return any_clipped;
}

// The legend right of the plot: a row per method, the dense baseline, and a note on hollow markers.
void draw_legend(SvgPlot& svg, const CurveAxes& a, const SweepConfig& sweep, bool dense, bool any_clipped) {
  const double lx = a.right + 18, row = 22;
  const bool dense_row = dense || sweep.dense_baseline;
  const double legend_h = 14 + row * (sweep.methods.size() + (dense_row ? 1 : 0));
  svg.raw("<g class=\"legend\" font-size=\"12\" fill=\"#222222\">\n");
  svg.rect(lx, a.top, a.W - lx - 12, legend_h, "fill=\"#ffffff\" stroke=\"#cccccc\" rx=\"4\"");
  double ly = a.top + 18;
  for (size_t i = 0; i < sweep.methods.size(); ++i, ly += row) {
    const char* color = kColors[i % kNumColors];
    svg.legend_row(lx + 10, ly, std::string("stroke=\"") + color + "\" stroke-width=\"2.2\"",
                   marker(static_cast<int>(i), lx + 25, ly, color, ""), sweep.methods[i].name);
  }
  if (dense_row) svg.legend_row(lx + 10, ly, kDenseStyle, "", dense ? "dense" : "dense (pending)");
  svg.raw("</g>\n");
  if (!any_clipped) return;
  const std::string note_style = "font-size=\"10.5\" fill=\"#666666\"";
  svg.text(lx, a.top + legend_h + 20, "hollow markers: below " + a.y_label(a.y_lo) + "%,", note_style);
  svg.text(lx, a.top + legend_h + 34, "drawn on the bottom edge", note_style);
}

}  // namespace

std::string curve_svg(const SweepConfig& sweep, const std::vector<PointResult>& results) {
  CurveAxes axes;
  set_x_axis(axes, sweep, results);
  set_y_axis(axes, results);
  SvgPlot svg(axes.W, axes.H, std::string("font-family=\"") + kFont + "\"");
  draw_titles(svg, axes, sweep.name);
  draw_grid(svg, axes);
  const PointResult* dense = dense_result(results);
  if (dense) draw_dense(svg, axes, *dense);
  bool any_clipped = false;
  for (size_t i = 0; i < sweep.methods.size(); ++i)
    any_clipped = draw_method(svg, axes, i, sweep.methods[i].name, results) || any_clipped;
  if (results.empty())
    svg.text((axes.left + axes.right) / 2, (axes.top + axes.bottom) / 2, "no finished points yet",
             "text-anchor=\"middle\" font-size=\"14\" fill=\"#999999\"");
  draw_legend(svg, axes, sweep, dense != nullptr, any_clipped);
  return svg.finish();
}

CurveFiles curve_files(const std::string& output) {
  const fs::path out(output);
  return {(out / "curve.csv").string(), (out / "curve.md").string(), (out / "curve.svg").string()};
}

void write_curve_files(const SweepConfig& sweep, const std::vector<PointResult>& results) {
  fs::create_directories(sweep.output);
  const CurveFiles files = curve_files(sweep.output);
  write_file_atomic(files.csv, curve_csv(results));
  write_file_atomic(files.md, curve_markdown(sweep, results));
  write_file_atomic(files.svg, curve_svg(sweep, results));
}

}  // namespace st::experiment
