// experiment/sweep.cpp — override merging, point resolution, and the resumable run loop (the sweep
// file's keys are read in experiment/sweep_keys.cpp).
#include "experiment/sweep.h"
#include "experiment/json_errors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "experiment/key_table.h"
#include "experiment/run_folder.h"
#include "experiment/sweep_report.h"

namespace st::experiment {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Applies an override object: nested objects merge into what is there (deep merge), every other
// value is set through apply_override, so a key outside the config schema is an error.
void apply_object(json& raw, const std::string& prefix, const json& entries) {
  for (const auto& item : entries.items()) {
    const std::string key = prefix.empty() ? item.key() : prefix + "." + item.key();
    const json& v = item.value();
    if (v.is_object() && !v.empty()) {
      apply_object(raw, key, v);
    } else if (v.is_object()) {
      const json* have = key_table_detail::find_path(raw, key);
      if (!have || !have->is_object()) apply_override(raw, key + "={}");
    } else {
      apply_override(raw, key + "=" + v.dump());
    }
  }
}

// The first key path where `want` and `have` disagree ("" = none). Keys only in `have` are ignored
// (a trainer may record more than the config holds).
std::string first_difference(const json& want, const json& have, const std::string& path) {
  if (want.is_object()) {
    if (!have.is_object()) return path.empty() ? "(the config)" : path;
    for (const auto& item : want.items()) {
      const std::string p = path.empty() ? item.key() : path + "." + item.key();
      auto it = have.find(item.key());
      if (it == have.end()) return p;
      std::string d = first_difference(item.value(), *it, p);
      if (!d.empty()) return d;
    }
    return "";
  }
  return want == have ? "" : path;
}

double sum_epoch_seconds(const std::string& metrics_path, bool* found) {
  std::ifstream in(metrics_path);
  *found = false;
  double total = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json m = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (m.is_object() && m.contains("epoch_seconds") && m["epoch_seconds"].is_number()) {
      total += m["epoch_seconds"].get<double>();
      *found = true;
    }
  }
  return total;
}

void flatten_scalars(const json& v, const std::string& path, json& out) {
  if (v.is_object()) {
    for (const auto& item : v.items()) flatten_scalars(item.value(), path.empty() ? item.key() : path + "." + item.key(), out);
  } else if (v.is_number() || v.is_string() || v.is_boolean()) {
    out[path] = v;
  }
}

}  // namespace

void apply_overrides(json& raw, const json& overrides) { apply_object(raw, "", overrides); }

std::string point_name(const std::string& method, double sparsity) {
  const long long micro = std::llround(sparsity * 1e6);
  const long long whole = micro / 1000, frac = micro % 1000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%03lld", whole);
  std::string name = method + "_s" + buf;
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, "%03lld", frac);
    std::string f = buf;
    while (!f.empty() && f.back() == '0') f.pop_back();
    name += "_" + f;
  }
  return name;
}

std::string runs_dir(const SweepConfig& sweep) { return (fs::path(sweep.output) / "runs").string(); }

std::vector<SweepPoint> resolve_points(const SweepConfig& sweep) {
  const std::string prefix = sweep.source.empty() ? "" : sweep.source + ": ";
  json common = sweep.base;
  try {
    apply_overrides(common, sweep.overrides);
  } catch (const ConfigError& e) {
    throw ConfigError(prefix + "overrides: " + e.what());
  }
  const std::string runs = runs_dir(sweep);

  std::vector<SweepPoint> points;
  auto add = [&](SweepPoint p, json raw, const std::string& where) {
    raw["name"] = p.name;
    p.config = parse_config(raw, prefix + where);
    p.run_dir = (fs::path(runs) / p.name).string();
    points.push_back(std::move(p));
  };
  if (sweep.dense_baseline) {
    json raw = common;
    raw.erase("pruning");
    SweepPoint p;
    p.name = p.method = "dense";
    p.dense = true;
    add(std::move(p), std::move(raw), "dense baseline (base config without \"pruning\")");
  }
  for (const auto& m : sweep.methods) {
    json with_method = common;
    try {
      apply_overrides(with_method, m.overrides);
    } catch (const ConfigError& e) {
      throw ConfigError(prefix + "method \"" + m.name + "\": " + e.what());
    }
    for (double s : sweep.sparsities) {
      const std::string where = "method \"" + m.name + "\", sparsity " + number_text(s);
      json raw = with_method;
      try {
        apply_override(raw, sweep.sparsity_key + "=" + json(s).dump());
      } catch (const ConfigError& e) {
        throw ConfigError(prefix + where + ": " + e.what());
      }
      SweepPoint p;
      p.name = point_name(m.name, s);
      p.method = m.name;
      p.sparsity = s;
      add(std::move(p), std::move(raw), where);
    }
  }
  return points;
}

void train_point(const Config& config, const RunOptions& options) {
  if (!options.resume_dir.empty()) {
    resume(options.resume_dir, options);
  } else {
    train(config, options);
  }
}

PointState point_state(const SweepPoint& point) {
  const RunPaths files(point.run_dir);
  const bool has_summary = fs::exists(files.summary);
  const bool has_checkpoint = fs::exists(files.checkpoint);
  const bool has_config = fs::exists(files.config);
  if (!has_summary && !(has_checkpoint && has_config)) return PointState::New;
  if (has_config) {
    // A folder from an edited sweep must not pass for this point: compare what decides the numbers.
    const std::string& path = files.config;
    // Read back through parse_config, so that a key added since the run was written counts as its
    // default, as it did when the run trained.
    json saved = to_json(parse_config(parse_user_json(read_user_file(path, "run config (JSON)"), path), path));
    json want = to_json(point.config);
    // Execution settings do not change the results (CSR execution matches masked dense: invariant 2).
    for (const char* k : {"threads", "output", "sparse"}) {
      want.erase(k);
      saved.erase(k);
    }
    const std::string diff = first_difference(want, saved, "");
    if (!diff.empty())
      throw ConfigError(point.run_dir + ": holds a run of a different config (\"" + diff +
                        "\" differs from the sweep's point \"" + point.name +
                        "\"); delete the folder to rerun it, or restore the sweep file");
  }
  return has_summary ? PointState::Done : PointState::Resume;
}

PointResult read_point_result(const SweepPoint& point) {
  const RunPaths files(point.run_dir);
  const std::string& path = files.summary;
  const json s = parse_user_json(read_user_file(path, "run summary (JSON)"), path);
  if (!s.is_object() || !s.contains("test_accuracy") || !s["test_accuracy"].is_number())
    throw ConfigError(path + ": expected an object with a numeric \"test_accuracy\"");
  PointResult r;
  r.name = point.name;
  r.method = point.method;
  r.run_dir = point.run_dir;
  r.sparsity = point.sparsity;
  r.dense = point.dense;
  r.test_accuracy = s["test_accuracy"].get<double>();
  if (s.contains("best_val_accuracy") && s["best_val_accuracy"].is_number())
    r.best_val_accuracy = s["best_val_accuracy"].get<double>();
  r.epochs = s.contains("epochs") && s["epochs"].is_number_integer() ? s["epochs"].get<int>() : point.config.train.epochs;
  bool found = false;
  r.seconds = sum_epoch_seconds(files.metrics, &found);
  if (!found && s.contains("seconds_this_process") && s["seconds_this_process"].is_number())
    r.seconds = s["seconds_this_process"].get<double>();
  json rest = s;
  for (const char* k : {"name", "epochs", "final", "test_accuracy", "best_val_accuracy", "seconds_this_process"})
    rest.erase(k);
  flatten_scalars(rest, "", r.extra);
  if (r.extra.is_null()) r.extra = json::object();
  return r;
}

// ---------------------------------------------------------------------------------------------
// run_sweep, step by step.

namespace {

// One invocation: every point of the sweep, the ones selected to train, their states and results.
struct SweepRun {
  const SweepConfig& sweep;
  const SweepOptions& options;
  std::vector<SweepPoint> all;
  std::vector<size_t> selected;                  // indices into `all`, in run order
  std::vector<PointState> states;                // of `all`
  std::vector<std::optional<PointResult>> done;  // of `all`: the finished points' results
  SweepReport report;

  void log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }
  // "[3/31] rigl_s900": the k-th selected point.
  std::string tag(size_t k) const {
    return "[" + std::to_string(k + 1) + "/" + std::to_string(selected.size()) + "] " + all[selected[k]].name;
  }
};

// --only: method names (and "dense"), each must exist.
void check_only(const SweepRun& run) {
  for (const auto& m : run.options.only) {
    const bool known = std::any_of(run.all.begin(), run.all.end(), [&](const SweepPoint& p) { return p.method == m; });
    if (known) continue;
    std::vector<std::string> names;
    for (const auto& p : run.all)
      if (std::find(names.begin(), names.end(), p.method) == names.end()) names.push_back(p.method);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
    throw ConfigError((run.sweep.source.empty() ? "" : run.sweep.source + ": ") + "--only " + m +
                      ": no such method in this sweep (methods: " + list + ")" + did_you_mean(m, names));
  }
}

// Every point, the selection and the states. --only limits what trains (and what --dry-run lists);
// the curve files always show every finished point of the sweep, so a partial invocation never
// hides earlier results. States come first: a folder from a different config fails here, before
// hours of training.
void resolve_run(SweepRun& run) {
  run.all = resolve_points(run.sweep);
  check_only(run);
  const std::vector<std::string>& only = run.options.only;
  const size_t shards = static_cast<size_t>(run.options.shard_count);
  for (size_t i = 0; i < run.all.size(); ++i)
    if ((only.empty() || std::find(only.begin(), only.end(), run.all[i].method) != only.end()) &&
        i % shards == static_cast<size_t>(run.options.shard_index)) {
      run.selected.push_back(i);
      run.report.points.push_back(run.all[i]);
    }
  for (const auto& p : run.all) run.states.push_back(point_state(p));
}

void list_points(SweepRun& run) {
  const SweepConfig& sweep = run.sweep;
  run.log("sweep " + sweep.name + ": " + std::to_string(run.selected.size()) + " points, base " + sweep.base_source +
          ", sparsity key " + sweep.sparsity_key + ", output " + sweep.output);
  for (size_t k = 0; k < run.selected.size(); ++k) {
    const size_t i = run.selected[k];
    const PointState s = run.states[i];
    const char* state = s == PointState::Done ? "done" : s == PointState::Resume ? "resume" : "new";
    run.log(run.tag(k) + "  (" + state + ")  " + run.all[i].run_dir);
    run.log("    " + describe(run.all[i].config));
    if (run.all[i].config.pruning) run.log("    pruning " + to_json(run.all[i].config)["pruning"].dump());
    if (s == PointState::Done) ++run.report.skipped;
    else ++run.report.pending;
  }
}

void read_finished(SweepRun& run) {
  run.done.resize(run.all.size());
  for (size_t i = 0; i < run.all.size(); ++i)
    if (run.states[i] == PointState::Done) run.done[i] = read_point_result(run.all[i]);
}

std::vector<PointResult> collect_results(const SweepRun& run) {
  std::vector<PointResult> out;
  for (const auto& r : run.done)
    if (r) out.push_back(*r);
  return out;
}

// Also the points another process (another --shard) finished since this one started.
void write_curve(SweepRun& run) {
  for (size_t i = 0; i < run.all.size(); ++i)
    if (!run.done[i] && fs::exists(RunPaths(run.all[i].run_dir).summary)) run.done[i] = read_point_result(run.all[i]);
  write_curve_files(run.sweep, collect_results(run));
}

// Trains (or resumes) the k-th selected point and reads its result back.
void train_one_point(SweepRun& run, size_t k) {
  const size_t i = run.selected[k];
  const SweepPoint& p = run.all[i];
  const bool resuming = run.states[i] == PointState::Resume;
  run.log(run.tag(k) + (resuming ? "  resuming " : "  training ") + p.run_dir);
  RunOptions options;
  options.run_dir = p.run_dir;
  options.quiet = run.options.quiet;
  static distributed::SingleProcess one_process;  // a point trains on this process alone
  options.comm = &one_process;
  if (resuming) options.resume_dir = p.run_dir;
  try {
    run.options.train(p.config, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("sweep point " + p.name + " (" + p.run_dir + "): " + e.what());
  }
  if (const RunPaths files(p.run_dir); !fs::exists(files.summary))
    throw std::runtime_error("sweep point " + p.name + ": the run ended without " + files.summary);
  run.done[i] = read_point_result(p);
  resuming ? ++run.report.resumed : ++run.report.trained;
  char line[160];
  std::snprintf(line, sizeof line, "  test %.2f%%  (%.1f s)", 100 * run.done[i]->test_accuracy, run.done[i]->seconds);
  run.log(run.tag(k) + line);
}

// The selected points in order: finished ones are skipped, at most options.max_points train.
void train_points(SweepRun& run) {
  int budget = run.options.max_points > 0 ? run.options.max_points : -1;
  for (size_t k = 0; k < run.selected.size(); ++k) {
    const size_t i = run.selected[k];
    if (run.states[i] == PointState::Done) {
      ++run.report.skipped;
      char line[160];
      std::snprintf(line, sizeof line, "  done: test %.2f%% (skipped)", 100 * run.done[i]->test_accuracy);
      run.log(run.tag(k) + line);
      continue;
    }
    if (budget == 0) {
      ++run.report.pending;
      continue;
    }
    if (budget > 0) --budget;
    train_one_point(run, k);
    write_curve(run);
  }
}

}  // namespace

std::pair<int, int> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  auto number = [&](const std::string& part) {
    if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos) return -1;
    return std::stoi(part);
  };
  const int index = slash == std::string::npos ? -1 : number(text.substr(0, slash));
  const int count = slash == std::string::npos ? -1 : number(text.substr(slash + 1));
  if (index < 0 || count < 1 || index >= count)
    throw ConfigError("--shard " + excerpt(text) + ": expected I/N with 0 <= I < N (e.g. --shard 0/4 ... --shard 3/4)");
  return {index, count};
}

void write_sweep_curve(const SweepConfig& sweep) {
  const SweepOptions defaults;
  SweepRun run{sweep, defaults, {}, {}, {}, {}, {}};
  resolve_run(run);
  read_finished(run);
  write_curve(run);
}

SweepReport run_sweep(const SweepConfig& sweep, const SweepOptions& options) {
  SweepRun run{sweep, options, {}, {}, {}, {}, {}};
  resolve_run(run);
  if (options.dry_run) {
    list_points(run);
    return run.report;
  }
  read_finished(run);
  fs::create_directories(runs_dir(sweep));
  write_curve(run);
  run.log("sweep " + sweep.name + ": " + std::to_string(run.selected.size()) + " points -> " + sweep.output);
  train_points(run);
  run.report.results = collect_results(run);
  if (run.report.pending > 0)
    run.log(std::to_string(run.report.pending) + " points left; run the same command again to continue");
  const CurveFiles curve = curve_files(sweep.output);
  run.log("curve: " + curve.svg + " | table: " + curve.md);
  return run.report;
}

}  // namespace st::experiment
