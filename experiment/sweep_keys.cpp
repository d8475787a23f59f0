// experiment/sweep_keys.cpp — the sweep file's key table: one row per key (path, type, default, help)
// read by the machinery of experiment/key_table.h, as the config's rows are. parse_sweep, load_sweep
// and sweep_reference (the sweep section of docs/config.md) read these rows; a new sweep key is one
// row here plus its use. The file is read as an ordered_json so that methods run (and plot) in the
// order written. Tests: tests/experiment/test_sweep.cpp
#include "experiment/sweep.h"

#include <cctype>
#include <filesystem>
#include <set>

#include "experiment/json_errors.h"
#include "experiment/key_table.h"

namespace st::experiment {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// What the rows read into: the sweep, and what reading it needs besides a row's value.
struct SweepFile {
  SweepConfig sweep;
  std::string base_dir;                   // the second place a relative base path is looked up
  const ordered_json* written = nullptr;  // the file as written: "methods" keeps its order
};

using K = Key<SweepFile>;

// An error about the base config file, already prefixed with that file's path (not the sweep's).
struct BaseFileError : ConfigError {
  using ConfigError::ConfigError;
};

json to_plain(const ordered_json& v) { return json::parse(v.dump()); }

const std::string& non_empty(const std::string& s, const std::string& path) {
  if (s.empty()) fail_key(path + ": must not be empty");
  return s;
}

bool valid_method_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

K name_key() {
  K k = string_key<SweepFile>("name", [](auto& f) -> auto& { return f.sweep.name; }, "the sweep's name (the curve's title)");
  k.read = [](SweepFile& f, const json& v, const std::string& p) { f.sweep.name = non_empty(read_string(v, p), p); };
  k.fill_default = [](SweepFile& f) {
    f.sweep.name = non_empty(f.sweep.source.empty() ? "sweep" : fs::path(f.sweep.source).stem().string(), "name");
  };
  k.default_doc = "the sweep file's stem";
  return k;
}

// A relative path is looked up from the current directory first, then from `base_dir`.
std::string find_base_file(const std::string& path, const std::string& base_dir) {
  std::string found = path;
  if (!fs::exists(path) && !base_dir.empty() && fs::path(path).is_relative() && fs::exists(fs::path(base_dir) / path))
    found = (fs::path(base_dir) / path).string();
  if (!fs::exists(found))
    fail_key("base: config file \"" + excerpt(path) + "\" not found (looked in the current directory" +
             (base_dir.empty() ? std::string() : " and in \"" + base_dir + "\"") + ")");
  return found;
}

json read_base_file(const std::string& path) {
  try {
    json base = parse_user_json(read_user_file(path, "base config (JSON)"), path);
    if (!base.is_object()) throw ConfigError(path + ": expected a config object, got " + describe_value(base));
    return base;
  } catch (const ConfigError& e) {
    throw BaseFileError(e.what());
  }
}

K base_key() {
  K k;
  k.path = "base";
  k.type = "string or object";
  k.help = "the config every point starts from: a config file (looked up from the current directory, then "
           "from the sweep file's folder) or an inline config object";
  k.read = [](SweepFile& f, const json& v, const std::string& p) {
    if (v.is_string()) {
      f.sweep.base_source = find_base_file(v.get<std::string>(), f.base_dir);
      f.sweep.base = read_base_file(f.sweep.base_source);
    } else if (v.is_object()) {
      f.sweep.base_source = (f.sweep.source.empty() ? std::string("sweep") : f.sweep.source) + " (inline base)";
      f.sweep.base = v;
    } else {
      fail_key(p + ": expected a config file path or a config object, got " + describe_value(v));
    }
  };
  k.missing_hint = "a config file such as \"configs/lenet300_mnist.json\", or an inline config object";
  return required(k);
}

K overrides_key() {
  K k;
  k.path = "overrides";
  k.type = "object";
  k.help = "config keys applied to every point, before the method's (dotted keys or nested objects, deep-merged)";
  k.read = [](SweepFile& f, const json& v, const std::string& p) {
    if (!v.is_object()) fail_key(p + ": expected an object of config keys (e.g. {\"train.epochs\": 20}), got " + describe_value(v));
    json probe = f.sweep.base;
    try {
      apply_overrides(probe, v);
    } catch (const ConfigError& e) {
      fail_key(p + ": " + e.what());
    }
    f.sweep.overrides = v;
  };
  k.write = [](const SweepFile& f) { return f.sweep.overrides; };
  return k;
}

// The key must be one an override can set in the base config.
void check_sparsity_key(const SweepFile& f) {
  const std::string& key = non_empty(f.sweep.sparsity_key, "sparsity_key");
  json probe = f.sweep.base;
  try {
    apply_override(probe, key + "=0.5");
  } catch (const ConfigError& e) {
    fail_key("sparsity_key = \"" + excerpt(key) + "\" is not a config key: " + e.what());
  }
}

K sparsity_key_key() {
  K k = string_key<SweepFile>("sparsity_key", [](auto& f) -> auto& { return f.sweep.sparsity_key; },
                              "the config key each sparsity is written to");
  k.read = [](SweepFile& f, const json& v, const std::string& p) {
    f.sweep.sparsity_key = read_string(v, p);
    check_sparsity_key(f);
  };
  k.fill_default = check_sparsity_key;
  return k;
}

K sparsities_key() {
  K k;
  k.path = "sparsities";
  k.type = "non-empty array of distinct numbers in [0, 1)";
  k.help = "the sparsities of the grid, in run order";
  k.read = [](SweepFile& f, const json& v, const std::string& p) {
    if (!v.is_array() || v.empty()) fail_key(p + ": expected a non-empty array of numbers in [0, 1), got " + describe_value(v));
    std::set<std::string> point_suffixes;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string path = p + "[" + std::to_string(i) + "]";
      if (!v[i].is_number()) fail_key(path + ": expected a number in [0, 1), got " + describe_value(v[i]));
      const double x = v[i].get<double>();
      if (!(x >= 0 && x < 1)) fail_key(path + " = " + v[i].dump() + " is out of range (allowed: [0, 1))");
      if (!point_suffixes.insert(point_name("", x)).second)
        fail_key(path + " = " + v[i].dump() + " repeats an earlier sparsity (or names the same run folder)");
      f.sweep.sparsities.push_back(x);
    }
  };
  k.missing_hint = "e.g. [0.5, 0.8, 0.9, 0.95]";
  return required(k);
}

SweepMethod read_method(const std::string& name, const ordered_json& overrides, const std::string& path) {
  if (!valid_method_name(name))
    fail_key(path + ": \"" + excerpt(name) + "\" is not a valid method name (allowed: letters, digits, '_', '-')");
  if (name == "dense") fail_key(path + ": \"dense\" is reserved for the dense baseline (use \"dense_baseline\": true)");
  if (!overrides.is_object())
    fail_key(path + ": expected an object of overrides (e.g. {\"pruning\": {\"method\": \"gradual\"}}), got " +
             describe_value(overrides));
  return {name, to_plain(overrides)};
}

K methods_key() {
  K k;
  k.path = "methods";
  k.type = "non-empty object: method name -> overrides";
  k.help = "one line of the curve per method (name: letters, digits, '_', '-', not \"dense\"), run and plotted in file order";
  k.read = [](SweepFile& f, const json& v, const std::string& p) {
    if (!v.is_object() || v.empty())
      fail_key(p + ": expected a non-empty object of method name -> overrides, got " + describe_value(v));
    for (const auto& item : f.written->at(p).items())
      f.sweep.methods.push_back(read_method(item.key(), item.value(), p + "." + item.key()));
  };
  k.missing_hint = "e.g. {\"one_shot\": {\"pruning\": {\"method\": \"one_shot\"}}}";
  return required(k);
}

K output_key() {
  K k = string_key<SweepFile>("output", [](auto& f) -> auto& { return f.sweep.output; },
                              "the folder of the runs and the curve files");
  k.read = [](SweepFile& f, const json& v, const std::string& p) { f.sweep.output = non_empty(read_string(v, p), p); };
  k.fill_default = [](SweepFile& f) { f.sweep.output = "results/" + f.sweep.name; };
  k.default_doc = "`\"results/<name>\"`";
  return k;
}

// In reading order: a row may use what the rows above it read (overrides and sparsity_key need base).
const KeyTable<SweepFile>& sweep_keys() {
  static const KeyTable<SweepFile> table = [] {
    KeyTable<SweepFile> t;
    t.push_back(name_key());
    t.push_back(string_key<SweepFile>("description", [](auto& f) -> auto& { return f.sweep.description; },
                                      "free text, copied into curve.md"));
    t.push_back(base_key());
    t.push_back(overrides_key());
    t.push_back(sparsity_key_key());
    t.push_back(sparsities_key());
    t.push_back(methods_key());
    t.push_back(bool_key<SweepFile>("dense_baseline", [](auto& f) -> auto& { return f.sweep.dense_baseline; },
                                    "also train base + overrides with the \"pruning\" block removed (point \"dense\")"));
    t.push_back(output_key());
    return t;
  }();
  return table;
}

}  // namespace

SweepConfig parse_sweep(const std::string& text, const std::string& source_name, const std::string& base_dir) {
  const ordered_json written = parse_user_ordered_json(text, source_name.empty() ? "sweep" : source_name);
  SweepFile f;
  f.sweep.source = source_name;
  f.base_dir = base_dir;
  f.written = &written;
  try {
    if (!written.is_object()) fail_key("expected a sweep object, got " + describe_value(written));
    parse_keys(sweep_keys(), {}, to_plain(written), f);
  } catch (const BaseFileError&) {
    throw;
  } catch (const ConfigError& e) {
    throw ConfigError((source_name.empty() ? "" : source_name + ": ") + e.what());
  }
  return f.sweep;
}

SweepConfig load_sweep(const std::string& path) {
  const std::string text = read_user_file(path, "sweep file (JSON)");
  return parse_sweep(text, path, fs::path(path).parent_path().string());
}

std::string sweep_reference() {
  return "\n## Sweep files\n\n"
         "Every key of a sweep file (JSON, docs/sweeps.md), generated from the key table in "
         "`experiment/sweep_keys.cpp` by the same command. Unknown keys are errors, as in a config.\n" +
         reference_markdown(sweep_keys());
}

}  // namespace st::experiment
