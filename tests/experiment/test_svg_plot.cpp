// tests/experiment/test_svg_plot.cpp — the SVG writer of the plots: escaping, numbers, 1-2-5 ticks,
// and a document whose elements are complete and balanced.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "experiment/svg_plot.h"

using namespace st::experiment;

TEST_CASE("svg plot: escaping, numbers and 1-2-5 ticks") {
  CHECK(xml_escape("a<b>&\"c\"") == "a&lt;b&gt;&amp;&quot;c&quot;");
  CHECK(svg_number(12.345) == "12.3");
  CHECK(svg_number(-0.04) == "-0.0");
  CHECK(ticks_125(0.01, 1) == std::vector<double>{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1});
  CHECK(ticks_125(1, 100) == std::vector<double>{1, 2, 5, 10, 20, 50, 100});
  CHECK(ticks_125(0.3, 4) == std::vector<double>{0.5, 1, 2});
}

TEST_CASE("svg plot: a document of complete, balanced elements") {
  SvgPlot svg(200, 100, "font-size=\"12\"");
  svg.line(0, 1, 2, 3, "stroke=\"#000\"");
  svg.rect(1, 2, 3, 4);
  svg.circle(5, 6, 2, "fill=\"red\"");
  svg.polyline({{1, 2}, {3.25, 4}}, "fill=\"none\"");
  svg.text(10, 20, "x < y", "text-anchor=\"end\"");
  svg.legend_row(10, 30, "stroke=\"blue\"", "", "series <1>");
  const std::string doc = svg.finish();
  CHECK(doc.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"100\"", 0) == 0);
  CHECK(doc.find("font-size=\"12\">") != std::string::npos);
  CHECK(doc.find("<line x1=\"0.0\" y1=\"1.0\" x2=\"2.0\" y2=\"3.0\" stroke=\"#000\"/>") != std::string::npos);
  CHECK(doc.find("<polyline fill=\"none\" points=\"1.0,2.0 3.2,4.0\"/>") != std::string::npos);
  CHECK(doc.find(">x &lt; y</text>") != std::string::npos);
  CHECK(doc.find(">series &lt;1&gt;</text>") != std::string::npos);
  CHECK(doc.size() >= 7);
  CHECK(doc.substr(doc.size() - 7) == "</svg>\n");
  int open = 0, close = 0, self = 0;
  for (size_t i = 0; i + 1 < doc.size(); ++i) {
    if (doc[i] != '<') continue;
    const size_t end = doc.find('>', i);
    REQUIRE(end != std::string::npos);
    if (doc[i + 1] == '/')
      ++close;
    else if (doc[end - 1] == '/')
      ++self;
    else
      ++open;
  }
  CHECK(open == close);
  CHECK(self == 6);  // background rect, line, rect, circle, polyline, legend line
}
