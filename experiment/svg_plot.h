// experiment/svg_plot.h — the one SVG writer of the project's plots (a sweep's curve.svg, the
// kernel benchmark's speedup plot): a canvas, elements with their attributes, numbers written the
// same way everywhere, XML escaping, 1-2-5 ticks for log axes, and legend rows.
// Tests: tests/experiment/test_svg_plot.cpp
#pragma once
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace st::experiment {

// "&", "<", ">", '"' as entities.
std::string xml_escape(const std::string& s);

// A coordinate as the plots write it: one decimal ("12.5").
std::string svg_number(double v);

// The 1-2-5 sequence (1, 2, 5, 10, 20, ...) from lo to hi, both > 0 (inclusive, with a little slack
// for rounding).
std::vector<double> ticks_125(double lo, double hi);

class SvgPlot {
 public:
  // A white canvas of width × height px. `root_attrs` are added to the <svg> element
  // (e.g. font-family="..." font-size="12").
  SvgPlot(double width, double height, const std::string& root_attrs);

  // Each writes one element; `attrs` are its further attributes, written as given.
  void text(double x, double y, const std::string& text, const std::string& attrs = "");
  void line(double x1, double y1, double x2, double y2, const std::string& attrs = "");
  void rect(double x, double y, double w, double h, const std::string& attrs = "");
  void circle(double x, double y, double r, const std::string& attrs = "");
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& attrs = "");
  // Anything else (a group, an element with a <title>), written as given.
  void raw(const std::string& svg);

  // One legend row at (x, y): a 30 px line styled by `line_attrs`, `marker` (an element drawn at its
  // middle, or ""), and the label to its right.
  void legend_row(double x, double y, const std::string& line_attrs, const std::string& marker,
                  const std::string& label, const std::string& label_attrs = "");

  // The document, closed.
  std::string finish();

 private:
  std::ostringstream out_;
};

}  // namespace st::experiment
