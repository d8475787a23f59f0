// experiment/sweep_report.cpp — curve.csv, curve.md and a hand-written curve.svg for a sweep.
#include "experiment/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "experiment/atomic_file.h"

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

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
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

// A marker of shape (index % 5) centred at (x, y): circle, square, triangle, diamond, inverted triangle.
// Hollow: a point below the y axis, drawn on the bottom edge.
std::string marker(int shape, double x, double y, const char* color, const std::string& tooltip, bool hollow = false) {
  const double r = 4.2;
  std::ostringstream m;
  const std::string style = hollow ? std::string(" fill=\"#ffffff\" stroke=\"") + color + "\" stroke-width=\"1.8\""
                                   : std::string(" fill=\"") + color + "\" stroke=\"#ffffff\" stroke-width=\"1.2\"";
  auto pt = [](double a, double b) { return fmt("%.1f", a) + "," + fmt("%.1f", b); };
  switch (shape % 5) {
    case 0: m << "<circle cx=\"" << fmt("%.1f", x) << "\" cy=\"" << fmt("%.1f", y) << "\" r=\"" << r << "\"" << style; break;
    case 1: m << "<rect x=\"" << fmt("%.1f", x - r) << "\" y=\"" << fmt("%.1f", y - r) << "\" width=\"" << 2 * r
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

// The 1-2-5 sequence from lo to hi (inclusive, with a little slack for rounding).
std::vector<double> ticks_125(double lo, double hi) {
  std::vector<double> out;
  for (int e = -6; e <= 1; ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push_back(v);
    }
  return out;
}

}  // namespace

std::string curve_svg(const SweepConfig& sweep, const std::vector<PointResult>& results) {
  const double W = 760, H = 500;
  const double left = 74, top = 62, right = W - 196, bottom = H - 66;  // plot area

  // x: fraction of weights remaining, log scale, from a 1-2-5 value at or below the smallest.
  double min_frac = 1;
  for (double s : sweep.sparsities) min_frac = std::min(min_frac, 1 - s);
  for (const auto& r : results) min_frac = std::min(min_frac, 1 - r.sparsity);
  min_frac = std::max(min_frac, 1e-6);
  double x_lo = 1;
  for (double v : ticks_125(1e-6, 1))
    if (v <= min_frac * 1.0001) x_lo = v;
  if (x_lo >= 1) x_lo = 0.1;
  const double lx_lo = std::log10(x_lo), lx_hi = 0, pad = 0.04 * (lx_hi - lx_lo);
  auto X = [&](double frac) {
    return left + (std::log10(frac) - (lx_lo - pad)) / ((lx_hi + pad) - (lx_lo - pad)) * (right - left);
  };

  // y: accuracy %, a nice step for the data's range (0..100 with no data).
  double y_min = 1e9, y_max = -1e9;
  for (const auto& r : results) {
    y_min = std::min(y_min, 100 * r.test_accuracy);
    y_max = std::max(y_max, 100 * r.test_accuracy);
  }
  // One collapsed run (one-shot at 99% can fall to chance) must not flatten every other curve: the
  // axis shows at most kZoomWindow points below the best result; lower ones sit on the bottom edge.
  constexpr double kZoomWindow = 15;
  if (y_max - y_min > kZoomWindow) y_min = y_max - kZoomWindow;
  double y_lo = 0, y_hi = 100, step = 10;
  if (!results.empty()) {
    const double span = std::max(y_max - y_min, 0.5), margin = 0.08 * span;
    for (double st : {0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0}) {
      step = st;
      if ((span + 2 * margin) / st <= 7) break;
    }
    y_lo = std::max(0.0, std::floor((y_min - margin) / step) * step);
    y_hi = std::min(100.0, std::ceil((y_max + margin) / step) * step);
    if (y_hi - y_lo < step) y_hi = y_lo + step;
  }
  // A little room inside the frame above and below the extreme ticks, so markers are never cut.
  const double inset = 0.035 * (bottom - top);
  auto Y = [&](double pct) {
    if (pct < y_lo) return bottom;
    return bottom - inset - (pct - y_lo) / (y_hi - y_lo) * (bottom - top - 2 * inset);
  };
  bool any_clipped = false;
  const int y_decimals = step == std::floor(step) ? 0 : step * 10 == std::floor(step * 10) ? 1 : 2;
  const std::string y_format = "%." + std::to_string(y_decimals) + "f";
  std::vector<double> y_ticks;
  for (int k = 0; y_lo + k * step <= y_hi + 1e-9; ++k) y_ticks.push_back(y_lo + k * step);

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
      << " " << H << "\" font-family=\"" << kFont << "\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"" << (left + right) / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\" fill=\"#222222\">"
      << xml_escape(sweep.name) << "</text>\n";
  svg << "<text x=\"" << (left + right) / 2 << "\" y=\"47\" text-anchor=\"middle\" font-size=\"12\" fill=\"#666666\">"
      << "test accuracy vs. fraction of weights remaining</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left << "\" height=\"" << bottom - top
      << "\" fill=\"#fafafa\" stroke=\"none\"/>\n";

  // Grid and ticks.
  svg << "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (int e = -6; e <= 0; ++e)
    for (int m = 1; m <= 9; ++m) {
      const double v = m * std::pow(10.0, e);
      if (v < x_lo * 0.999 || v > 1.0001) continue;
      const bool major = m == 1 || m == 2 || m == 5;
      svg << "<line x1=\"" << fmt("%.1f", X(v)) << "\" y1=\"" << top << "\" x2=\"" << fmt("%.1f", X(v)) << "\" y2=\"" << bottom
          << "\"" << (major ? "" : " stroke=\"#f0f0f0\"") << "/>\n";
    }
  for (double v : y_ticks)
    svg << "<line x1=\"" << left << "\" y1=\"" << fmt("%.1f", Y(v)) << "\" x2=\"" << right << "\" y2=\"" << fmt("%.1f", Y(v)) << "\"/>\n";
  svg << "</g>\n";
  svg << "<g font-size=\"12\" fill=\"#333333\">\n";
  for (double v : ticks_125(x_lo, 1))
    svg << "<text x=\"" << fmt("%.1f", X(v)) << "\" y=\"" << bottom + 18 << "\" text-anchor=\"middle\">" << percent_text(v) << "</text>\n";
  for (double v : y_ticks)
    svg << "<text x=\"" << left - 8 << "\" y=\"" << fmt("%.1f", Y(v) + 4) << "\" text-anchor=\"end\">" << fmt(y_format.c_str(), v) << "</text>\n";
  svg << "</g>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left << "\" height=\"" << bottom - top
      << "\" fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"/>\n";
  svg << "<text x=\"" << (left + right) / 2 << "\" y=\"" << H - 22 << "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\">"
      << "fraction of weights remaining (log scale)</text>\n";
  svg << "<text transform=\"translate(22," << (top + bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"13\" fill=\"#222222\">"
      << "test accuracy (%)</text>\n";

  // The dense baseline: a dashed reference line with its value at the right end.
  const PointResult* dense = dense_result(results);
  if (dense) {
    const double y = Y(100 * dense->test_accuracy);
    svg << "<line class=\"dense\" x1=\"" << left << "\" y1=\"" << fmt("%.1f", y) << "\" x2=\"" << right << "\" y2=\"" << fmt("%.1f", y)
        << "\" stroke=\"#444444\" stroke-width=\"1.6\" stroke-dasharray=\"7 5\"><title>dense baseline: "
        << fmt("%.2f", 100 * dense->test_accuracy) << "%</title></line>\n";
    const double label_y = y - top < 18 ? y + 15 : y - 6;  // below the line when it runs along the top
    svg << "<text x=\"" << right - 6 << "\" y=\"" << fmt("%.1f", label_y)
        << "\" text-anchor=\"end\" font-size=\"11\" fill=\"#444444\">dense "
        << fmt("%.2f", 100 * dense->test_accuracy) << "%</text>\n";
  }

  // One polyline per method (empty until its first point finishes), markers on top.
  for (size_t i = 0; i < sweep.methods.size(); ++i) {
    const auto& m = sweep.methods[i];
    const char* color = kColors[i % kNumColors];
    std::vector<const PointResult*> pts;
    for (const auto& r : results)
      if (!r.dense && r.method == m.name) pts.push_back(&r);
    std::sort(pts.begin(), pts.end(), [](const PointResult* a, const PointResult* b) { return a->sparsity > b->sparsity; });
    svg << "<g class=\"method\" data-method=\"" << xml_escape(m.name) << "\">\n<polyline class=\"curve\" fill=\"none\" stroke=\""
        << color << "\" stroke-width=\"2.2\" stroke-linejoin=\"round\" points=\"";
    for (size_t k = 0; k < pts.size(); ++k)
      svg << (k ? " " : "") << fmt("%.1f", X(1 - pts[k]->sparsity)) << "," << fmt("%.1f", Y(100 * pts[k]->test_accuracy));
    svg << "\"/>\n";
    for (const PointResult* r : pts) {
      const double pct = 100 * r->test_accuracy, x = X(1 - r->sparsity);
      const bool clipped = pct < y_lo;
      svg << marker(static_cast<int>(i), x, Y(pct), color,
                    m.name + ", sparsity " + number_text(r->sparsity) + ": " + fmt("%.2f", pct) + "%", clipped)
          << "\n";
      if (clipped) {
        any_clipped = true;
        svg << "<text x=\"" << fmt("%.1f", x + 7) << "\" y=\"" << fmt("%.1f", bottom - 6) << "\" font-size=\"10\" fill=\"" << color
            << "\">" << fmt("%.1f", pct) << "%</text>\n";
      }
    }
    svg << "</g>\n";
  }
  if (results.empty())
    svg << "<text x=\"" << (left + right) / 2 << "\" y=\"" << (top + bottom) / 2 << "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#999999\">"
        << "no finished points yet</text>\n";

  // Legend, right of the plot.
  const double lx = right + 18, row = 22;
  const double legend_h = 14 + row * (sweep.methods.size() + (dense || sweep.dense_baseline ? 1 : 0));
  svg << "<g class=\"legend\" font-size=\"12\" fill=\"#222222\">\n";
  svg << "<rect x=\"" << lx << "\" y=\"" << top << "\" width=\"" << W - lx - 12 << "\" height=\"" << legend_h
      << "\" fill=\"#ffffff\" stroke=\"#cccccc\" rx=\"4\"/>\n";
  double ly = top + 18;
  for (size_t i = 0; i < sweep.methods.size(); ++i, ly += row) {
    const char* color = kColors[i % kNumColors];
    svg << "<line x1=\"" << lx + 10 << "\" y1=\"" << ly << "\" x2=\"" << lx + 40 << "\" y2=\"" << ly << "\" stroke=\"" << color
        << "\" stroke-width=\"2.2\"/>" << marker(static_cast<int>(i), lx + 25, ly, color, "") << "<text x=\"" << lx + 48
        << "\" y=\"" << ly + 4 << "\">" << xml_escape(sweep.methods[i].name) << "</text>\n";
  }
  if (dense || sweep.dense_baseline)
    svg << "<line x1=\"" << lx + 10 << "\" y1=\"" << ly << "\" x2=\"" << lx + 40 << "\" y2=\"" << ly
        << "\" stroke=\"#444444\" stroke-width=\"1.6\" stroke-dasharray=\"7 5\"/><text x=\"" << lx + 48 << "\" y=\"" << ly + 4
        << "\">dense" << (dense ? "" : " (pending)") << "</text>\n";
  svg << "</g>\n";
  if (any_clipped)
    svg << "<text x=\"" << lx << "\" y=\"" << top + legend_h + 20 << "\" font-size=\"10.5\" fill=\"#666666\">hollow markers: below "
        << fmt(y_format.c_str(), y_lo) << "%,</text>\n<text x=\"" << lx << "\" y=\"" << top + legend_h + 34
        << "\" font-size=\"10.5\" fill=\"#666666\">drawn on the bottom edge</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

void write_curve_files(const SweepConfig& sweep, const std::vector<PointResult>& results) {
  const fs::path out(sweep.output);
  fs::create_directories(out);
  write_file_atomic((out / "curve.csv").string(), curve_csv(results));
  write_file_atomic((out / "curve.md").string(), curve_markdown(sweep, results));
  write_file_atomic((out / "curve.svg").string(), curve_svg(sweep, results));
}

}  // namespace st::experiment
