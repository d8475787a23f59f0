// experiment/sweep.cpp — sweep JSON validation, point resolution, and the resumable run loop.
// The sweep file is read as an ordered_json so that methods run (and plot) in the order written.
#include "experiment/sweep.h"
#include "experiment/json_errors.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "experiment/run_folder.h"
#include "experiment/sweep_report.h"

namespace st::experiment {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

const std::vector<std::string> kSweepKeys = {"name",    "description", "base",           "overrides",
                                             "sparsity_key", "sparsities", "methods", "dense_baseline",
                                             "output"};

bool valid_method_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

json to_plain(const ordered_json& v) { return json::parse(v.dump()); }

// The value at a dotted path ("pruning.schedule"), or nullptr.
const json* find_path(const json& raw, const std::string& dotted) {
  const json* cur = &raw;
  std::stringstream ss(dotted);
  std::string seg;
  while (std::getline(ss, seg, '.')) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(seg);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

// Applies an override object: nested objects merge into what is there (deep merge), every other
// value is set through apply_override, so a key outside the config schema is an error.
void apply_object(json& raw, const std::string& prefix, const json& entries) {
  for (const auto& item : entries.items()) {
    const std::string key = prefix.empty() ? item.key() : prefix + "." + item.key();
    const json& v = item.value();
    if (v.is_object() && !v.empty()) {
      apply_object(raw, key, v);
    } else if (v.is_object()) {
      const json* have = find_path(raw, key);
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

// ---------------------------------------------------------------------------------------------

SweepConfig parse_sweep(const std::string& text, const std::string& source_name, const std::string& base_dir) {
  const std::string prefix = source_name.empty() ? "" : source_name + ": ";
  auto fail = [&](const std::string& msg) -> void { throw ConfigError(prefix + msg); };
  const ordered_json raw = parse_user_ordered_json(text, source_name.empty() ? "sweep" : source_name);
  if (!raw.is_object()) fail("expected a sweep object, got " + describe_value(raw));
  for (const auto& item : raw.items())
    if (std::find(kSweepKeys.begin(), kSweepKeys.end(), item.key()) == kSweepKeys.end())
      fail("unknown key \"" + excerpt(item.key()) + "\"" + did_you_mean(item.key(), kSweepKeys));

  SweepConfig s;
  s.source = source_name;
  auto string_at = [&](const char* key, const std::string& def) {
    auto it = raw.find(key);
    if (it == raw.end()) return def;
    if (!it->is_string()) fail(std::string(key) + ": expected a string, got " + describe_value(*it));
    return it->get<std::string>();
  };

  const std::string stem = source_name.empty() ? "sweep" : fs::path(source_name).stem().string();
  s.name = string_at("name", stem);
  if (s.name.empty()) fail("name: must not be empty");
  s.description = string_at("description", "");

  // base: a config file or an inline config object.
  auto base_it = raw.find("base");
  if (base_it == raw.end()) fail("missing required key \"base\" (a config file such as \"configs/lenet300_mnist.json\", or an inline config object)");
  if (base_it->is_string()) {
    const std::string path = base_it->get<std::string>();
    std::string found = path;
    if (!fs::exists(path) && !base_dir.empty() && fs::path(path).is_relative() && fs::exists(fs::path(base_dir) / path))
      found = (fs::path(base_dir) / path).string();
    if (!fs::exists(found))
      fail("base: config file \"" + excerpt(path) + "\" not found (looked in the current directory" +
           (base_dir.empty() ? std::string() : " and in \"" + base_dir + "\"") + ")");
    s.base_source = found;
    s.base = parse_user_json(read_user_file(found, "base config (JSON)"), found);
    if (!s.base.is_object()) throw ConfigError(found + ": expected a config object, got " + describe_value(to_plain(s.base)));
  } else if (base_it->is_object()) {
    s.base_source = (source_name.empty() ? std::string("sweep") : source_name) + " (inline base)";
    s.base = to_plain(*base_it);
  } else {
    fail("base: expected a config file path or a config object, got " + describe_value(*base_it));
  }

  // overrides: applied to every point.
  if (auto it = raw.find("overrides"); it != raw.end()) {
    if (!it->is_object()) fail("overrides: expected an object of config keys (e.g. {\"train.epochs\": 20}), got " + describe_value(*it));
    s.overrides = to_plain(*it);
    json probe = s.base;
    try {
      apply_object(probe, "", s.overrides);
    } catch (const ConfigError& e) {
      fail(std::string("overrides: ") + e.what());
    }
  } else {
    s.overrides = json::object();
  }

  s.sparsity_key = string_at("sparsity_key", "pruning.target");
  if (s.sparsity_key.empty()) fail("sparsity_key: must not be empty");
  {
    json probe = s.base;
    try {
      apply_override(probe, s.sparsity_key + "=0.5");
    } catch (const ConfigError& e) {
      fail(std::string("sparsity_key = \"") + excerpt(s.sparsity_key) + "\" is not a config key: " + e.what());
    }
  }

  // sparsities: a non-empty array of distinct numbers in [0, 1).
  auto sp_it = raw.find("sparsities");
  if (sp_it == raw.end()) fail("missing required key \"sparsities\" (e.g. [0.5, 0.8, 0.9, 0.95])");
  if (!sp_it->is_array() || sp_it->empty())
    fail("sparsities: expected a non-empty array of numbers in [0, 1), got " + describe_value(*sp_it));
  std::set<std::string> point_suffixes;
  for (size_t i = 0; i < sp_it->size(); ++i) {
    const ordered_json& v = (*sp_it)[i];
    const std::string path = "sparsities[" + std::to_string(i) + "]";
    if (!v.is_number()) fail(path + ": expected a number in [0, 1), got " + describe_value(v));
    const double x = v.get<double>();
    if (!(x >= 0 && x < 1)) fail(path + " = " + v.dump() + " is out of range (allowed: [0, 1))");
    if (!point_suffixes.insert(point_name("", x)).second)
      fail(path + " = " + v.dump() + " repeats an earlier sparsity (or names the same run folder)");
    s.sparsities.push_back(x);
  }

  // methods: name -> override object, in file order.
  auto m_it = raw.find("methods");
  if (m_it == raw.end()) fail("missing required key \"methods\" (e.g. {\"one_shot\": {\"pruning\": {\"method\": \"one_shot\"}}})");
  if (!m_it->is_object() || m_it->empty())
    fail("methods: expected a non-empty object of method name -> overrides, got " + describe_value(*m_it));
  for (const auto& item : m_it->items()) {
    const std::string path = "methods." + item.key();
    if (!valid_method_name(item.key()))
      fail(path + ": \"" + excerpt(item.key()) + "\" is not a valid method name (allowed: letters, digits, '_', '-')");
    if (item.key() == "dense") fail(path + ": \"dense\" is reserved for the dense baseline (use \"dense_baseline\": true)");
    if (!item.value().is_object())
      fail(path + ": expected an object of overrides (e.g. {\"pruning\": {\"method\": \"gradual\"}}), got " + describe_value(item.value()));
    s.methods.push_back({item.key(), to_plain(item.value())});
  }

  if (auto it = raw.find("dense_baseline"); it != raw.end()) {
    if (!it->is_boolean()) fail("dense_baseline: expected a boolean (true or false), got " + describe_value(*it));
    s.dense_baseline = it->get<bool>();
  }
  s.output = string_at("output", "results/" + s.name);
  if (s.output.empty()) fail("output: must not be empty");
  return s;
}

SweepConfig load_sweep(const std::string& path) {
  const std::string text = read_user_file(path, "sweep file (JSON)");
  return parse_sweep(text, path, fs::path(path).parent_path().string());
}

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

std::vector<SweepPoint> resolve_points(const SweepConfig& sweep) {
  const std::string prefix = sweep.source.empty() ? "" : sweep.source + ": ";
  json common = sweep.base;
  try {
    apply_object(common, "", sweep.overrides);
  } catch (const ConfigError& e) {
    throw ConfigError(prefix + "overrides: " + e.what());
  }
  const std::string runs = (fs::path(sweep.output) / "runs").string();

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
      apply_object(with_method, "", m.overrides);
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

SweepReport run_sweep(const SweepConfig& sweep, const SweepOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) {
      options.log(line);
    } else {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  };
  std::vector<SweepPoint> all = resolve_points(sweep);

  // --only: method names (and "dense"), each must exist.
  for (const auto& m : options.only) {
    const bool known = std::any_of(all.begin(), all.end(), [&](const SweepPoint& p) { return p.method == m; });
    if (!known) {
      std::vector<std::string> names;
      for (const auto& p : all)
        if (std::find(names.begin(), names.end(), p.method) == names.end()) names.push_back(p.method);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
      throw ConfigError((sweep.source.empty() ? "" : sweep.source + ": ") + "--only " + m +
                        ": no such method in this sweep (methods: " + list + ")" + did_you_mean(m, names));
    }
  }
  // --only limits what trains (and what --dry-run lists); the curve files always show every finished
  // point of the sweep, so a partial invocation never hides earlier results.
  SweepReport report;
  std::vector<size_t> selected;  // indices into `all`
  for (size_t i = 0; i < all.size(); ++i)
    if (options.only.empty() || std::find(options.only.begin(), options.only.end(), all[i].method) != options.only.end()) {
      selected.push_back(i);
      report.points.push_back(all[i]);
    }
  const size_t n = selected.size();
  auto tag = [&](size_t k) { return "[" + std::to_string(k + 1) + "/" + std::to_string(n) + "] " + all[selected[k]].name; };

  // States first: a folder from a different config fails here, before hours of training.
  std::vector<PointState> states;
  for (const auto& p : all) states.push_back(point_state(p));

  if (options.dry_run) {
    log("sweep " + sweep.name + ": " + std::to_string(n) + " points, base " + sweep.base_source +
        ", sparsity key " + sweep.sparsity_key + ", output " + sweep.output);
    for (size_t k = 0; k < n; ++k) {
      const size_t i = selected[k];
      const char* state = states[i] == PointState::Done ? "done" : states[i] == PointState::Resume ? "resume" : "new";
      log(tag(k) + "  (" + state + ")  " + all[i].run_dir);
      log("    " + describe(all[i].config));
      if (all[i].config.pruning) log("    pruning " + to_json(all[i].config)["pruning"].dump());
      if (states[i] == PointState::Done) ++report.skipped;
      else ++report.pending;
    }
    return report;
  }

  std::vector<std::optional<PointResult>> done(all.size());
  for (size_t i = 0; i < all.size(); ++i)
    if (states[i] == PointState::Done) done[i] = read_point_result(all[i]);
  auto collect = [&] {
    std::vector<PointResult> out;
    for (const auto& r : done)
      if (r) out.push_back(*r);
    return out;
  };
  fs::create_directories(fs::path(sweep.output) / "runs");
  write_curve_files(sweep, collect());

  log("sweep " + sweep.name + ": " + std::to_string(n) + " points -> " + sweep.output);
  int budget = options.max_points > 0 ? options.max_points : -1;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = selected[k];
    const SweepPoint& p = all[i];
    char line[160];
    if (states[i] == PointState::Done) {
      ++report.skipped;
      std::snprintf(line, sizeof line, "  done: test %.2f%% (skipped)", 100 * done[i]->test_accuracy);
      log(tag(k) + line);
      continue;
    }
    if (budget == 0) {
      ++report.pending;
      continue;
    }
    if (budget > 0) --budget;
    const bool resuming = states[i] == PointState::Resume;
    log(tag(k) + (resuming ? "  resuming " : "  training ") + p.run_dir);
    RunOptions run;
    run.run_dir = p.run_dir;
    run.quiet = options.quiet;
    if (resuming) run.resume_dir = p.run_dir;
    try {
      options.train(p.config, run);
    } catch (const std::exception& e) {
      throw std::runtime_error("sweep point " + p.name + " (" + p.run_dir + "): " + e.what());
    }
    if (const RunPaths files(p.run_dir); !fs::exists(files.summary))
      throw std::runtime_error("sweep point " + p.name + ": the run ended without " + files.summary);
    done[i] = read_point_result(p);
    resuming ? ++report.resumed : ++report.trained;
    std::snprintf(line, sizeof line, "  test %.2f%%  (%.1f s)", 100 * done[i]->test_accuracy, done[i]->seconds);
    log(tag(k) + line);
    write_curve_files(sweep, collect());
  }
  report.results = collect();
  if (report.pending > 0)
    log(std::to_string(report.pending) + " points left; run the same command again to continue");
  const CurveFiles curve = curve_files(sweep.output);
  log("curve: " + curve.svg + " | table: " + curve.md);
  return report;
}

}  // namespace st::experiment
