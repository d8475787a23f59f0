// experiment/svg_plot.cpp — the SVG writer behind curve.svg and the kernel benchmark plot.
#include "experiment/svg_plot.h"

#include <cmath>
#include <cstdio>

namespace st::experiment {

namespace {

std::string with_space(const std::string& attrs) { return attrs.empty() ? "" : " " + attrs; }

}  // namespace

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

std::string svg_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::vector<double> ticks_125(double lo, double hi) {
  std::vector<double> out;
  const int e_lo = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int e_hi = static_cast<int>(std::ceil(std::log10(hi)));
  for (int e = e_lo; e <= e_hi; ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push_back(v);
    }
  return out;
}

SvgPlot::SvgPlot(double width, double height, const std::string& root_attrs) {
  out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
       << "\" viewBox=\"0 0 " << width << " " << height << "\"" << with_space(root_attrs) << ">\n";
  out_ << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
}

void SvgPlot::text(double x, double y, const std::string& text, const std::string& attrs) {
  out_ << "<text x=\"" << svg_number(x) << "\" y=\"" << svg_number(y) << "\"" << with_space(attrs) << ">"
       << xml_escape(text) << "</text>\n";
}

void SvgPlot::line(double x1, double y1, double x2, double y2, const std::string& attrs) {
  out_ << "<line x1=\"" << svg_number(x1) << "\" y1=\"" << svg_number(y1) << "\" x2=\"" << svg_number(x2)
       << "\" y2=\"" << svg_number(y2) << "\"" << with_space(attrs) << "/>\n";
}

void SvgPlot::rect(double x, double y, double w, double h, const std::string& attrs) {
  out_ << "<rect x=\"" << svg_number(x) << "\" y=\"" << svg_number(y) << "\" width=\"" << svg_number(w)
       << "\" height=\"" << svg_number(h) << "\"" << with_space(attrs) << "/>\n";
}

void SvgPlot::circle(double x, double y, double r, const std::string& attrs) {
  out_ << "<circle cx=\"" << svg_number(x) << "\" cy=\"" << svg_number(y) << "\" r=\"" << svg_number(r) << "\""
       << with_space(attrs) << "/>\n";
}

void SvgPlot::polyline(const std::vector<std::pair<double, double>>& points, const std::string& attrs) {
  out_ << "<polyline" << with_space(attrs) << " points=\"";
  for (size_t k = 0; k < points.size(); ++k)
    out_ << (k ? " " : "") << svg_number(points[k].first) << "," << svg_number(points[k].second);
  out_ << "\"/>\n";
}

void SvgPlot::raw(const std::string& svg) { out_ << svg; }

void SvgPlot::legend_row(double x, double y, const std::string& line_attrs, const std::string& marker,
                         const std::string& label, const std::string& label_attrs) {
  out_ << "<line x1=\"" << svg_number(x) << "\" y1=\"" << svg_number(y) << "\" x2=\"" << svg_number(x + 30)
       << "\" y2=\"" << svg_number(y) << "\"" << with_space(line_attrs) << "/>" << marker;
  text(x + 38, y + 4, label, label_attrs);
}

std::string SvgPlot::finish() {
  out_ << "</svg>\n";
  return out_.str();
}

}  // namespace st::experiment
