// experiment/sweep.h — a grid of runs (method × sparsity) over one base config, resumable, with a curve.
//   load_sweep / parse_sweep: the sweep JSON -> SweepConfig   (strict: unknown keys are errors; "<file>: " prefix;
//                             the key table is in experiment/sweep_keys.cpp)
//   sweep_reference:          the sweep file's keys as Markdown (the second part of docs/config.md)
//   apply_overrides:          an override object (`overrides`, a method's) onto a raw config
//   resolve_points:           SweepConfig -> every point's validated Config, in run order
//   run_sweep:                train the points one after another (skip finished ones, resume
//                             interrupted ones), rewriting <output>/curve.{csv,md,svg} after each
// Outputs: <output>/runs/<point>/ (one run folder per point), curve.csv, curve.md, curve.svg
// (experiment/sweep_report.h). Schema and usage: docs/sweeps.md. Tests: tests/experiment/test_sweep.cpp
//
// The sweep knows nothing about pruning: a point is "base config + overrides", and the sparsity is
// written to whatever key `sparsity_key` names. Validation of a point is parse_config's.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/config.h"
#include "experiment/trainer.h"

namespace st::experiment {

struct SweepMethod {
  std::string name;        // [A-Za-z0-9_-]+, unique, not "dense"
  nlohmann::json overrides;  // an object: nested objects are deep-merged, "a.b" keys are overrides
};

struct SweepConfig {
  std::string source;          // the sweep file ("" when parsed from text without one)
  std::string name;            // default: the sweep file's stem
  std::string description;     // free text, optional
  std::string base_source;     // the base config file, or "<sweep file> (inline base)"
  nlohmann::json base;         // the raw base config (validated per point, after overrides)
  nlohmann::json overrides = nlohmann::json::object();  // applied to every point (deep merge / dotted keys)
  std::string sparsity_key = "pruning.target";
  std::vector<double> sparsities;  // each in [0, 1), distinct, in run order
  std::vector<SweepMethod> methods;  // in file order (= run order)
  bool dense_baseline = false; // also run base + overrides with the "pruning" block removed
  std::string output;          // default: results/<name>
};

// One grid point, fully resolved.
struct SweepPoint {
  std::string name;      // "<method>_s<sparsity*1000, 3 digits>" ("one_shot_s900"), or "dense"
  std::string method;    // "dense" for the baseline
  double sparsity = 0;   // 0 for the baseline
  bool dense = false;
  Config config;         // validated; config.name == name
  std::string run_dir;   // <output>/runs/<name>
};

// <output>/runs: the folder of the points' run folders.
std::string runs_dir(const SweepConfig& sweep);

// Reads a sweep file. A relative "base" path is looked up from the current directory first, then
// from the sweep file's folder.
SweepConfig load_sweep(const std::string& path);
// The same from JSON text; `source_name` prefixes errors, `base_dir` is the second place a relative
// base path is looked up ("" = current directory only).
SweepConfig parse_sweep(const std::string& text, const std::string& source_name,
                        const std::string& base_dir = "");

// The sweep file's keys, one Markdown table (generated from the key table).
std::string sweep_reference();

// Applies an override object to a raw config: nested objects merge into what is there (deep merge),
// every other value is set through apply_override, so a key outside the config schema is an error.
void apply_overrides(nlohmann::json& raw, const nlohmann::json& overrides);

// "one_shot_s900"; sparsities that are not whole thousandths keep their extra digits ("s999_5").
std::string point_name(const std::string& method, double sparsity);

// Every point in run order: the dense baseline first (when asked), then method by method (file
// order), sparsity by sparsity (file order). Each Config goes through parse_config here, so a bad
// point fails before anything trains; the error names the method and the sparsity.
std::vector<SweepPoint> resolve_points(const SweepConfig& sweep);

// Trains one point: experiment::train, or experiment::resume when options.resume_dir is set. It must
// leave summary.json in options.run_dir (resume_dir when resuming) when the run completes.
using TrainPointFn = std::function<void(const Config&, const RunOptions&)>;
void train_point(const Config& config, const RunOptions& options);

// What a finished point reports (read back from its run folder, so skipped and fresh points agree).
struct PointResult {
  std::string name, method, run_dir;
  double sparsity = 0;
  bool dense = false;
  double test_accuracy = 0;       // fraction, 0..1
  double best_val_accuracy = -1;  // -1: no validation split
  int epochs = 0;
  double seconds = 0;             // training seconds summed over metrics.jsonl (all resumes)
  // Further scalar fields of summary.json, flattened ("sparsity", "pruning.actual_sparsity", ...).
  nlohmann::json extra = nlohmann::json::object();
};

// Reads <point.run_dir>/summary.json (and metrics.jsonl for the seconds). Throws if there is none.
PointResult read_point_result(const SweepPoint& point);

enum class PointState { Done, Resume, New };
// Done: summary.json; Resume: checkpoint + config.json but no summary; New: otherwise. A folder that
// holds a run of a different config is an error (the message names the first differing key).
PointState point_state(const SweepPoint& point);

struct SweepOptions {
  bool dry_run = false;           // list points and their configs; train and write nothing
  std::vector<std::string> only;  // methods to train ("dense" = the baseline); empty = all. The
                                  // curve files still show every finished point
  int max_points = 0;             // > 0: train at most this many points in this invocation
  // --shard I/N: this invocation takes the points whose index in the sweep's order is I modulo N
  // (0 <= I < N), so N processes (a job array, GNU parallel) share a sweep without training a point
  // twice. The curve files show every point finished by any of them when they are written.
  int shard_index = 0, shard_count = 1;
  bool quiet = false;             // no per-epoch output from the trainer
  TrainPointFn train = train_point;
  std::function<void(const std::string&)> log;  // one line of progress; default: stdout
};

struct SweepReport {
  std::vector<SweepPoint> points;      // the selected points, in run order
  std::vector<PointResult> results;    // every finished point of the sweep (not only the selected), in run order
  int trained = 0, resumed = 0, skipped = 0, pending = 0;
};

SweepReport run_sweep(const SweepConfig& sweep, const SweepOptions& options = {});

// The curve files from every point finished so far (after the ranks of an MPI sweep are done).
void write_sweep_curve(const SweepConfig& sweep);

// "I/N" (--shard) -> (I, N); throws ConfigError unless 0 <= I < N.
std::pair<int, int> parse_shard(const std::string& text);

}  // namespace st::experiment
