// experiment/sweep_report.h — a sweep's results as a table and a plot (pure text, no libraries).
//   curve_csv:      one row per finished point: method, sparsity, fraction_remaining, test_accuracy,
//                   test_error, best_val_accuracy, epochs, seconds, run_dir, then extra summary fields
//   curve_markdown: rows = sparsity, columns = methods, cells = test accuracy %; dense baseline line
//   curve_svg:      accuracy % against the fraction of weights remaining (log x), a line per method,
//                   the dense baseline dashed, a legend
//   curve_files:    the paths <output>/curve.{csv,md,svg}
//   write_curve_files: all three there, each atomically
// Tests: tests/experiment/test_sweep.cpp
#pragma once

#include <string>
#include <vector>

#include "experiment/sweep.h"

namespace st::experiment {

std::string curve_csv(const std::vector<PointResult>& results);
std::string curve_markdown(const SweepConfig& sweep, const std::vector<PointResult>& results);
std::string curve_svg(const SweepConfig& sweep, const std::vector<PointResult>& results);
struct CurveFiles {
  std::string csv, md, svg;
};
CurveFiles curve_files(const std::string& output);
void write_curve_files(const SweepConfig& sweep, const std::vector<PointResult>& results);

}  // namespace st::experiment
