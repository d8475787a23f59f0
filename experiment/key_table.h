// experiment/key_table.h — the machinery behind a declarative key table: one row per JSON key
// (dotted path, type, default, range or choices, one line of help, when it applies) drives
// validation, `--set` overrides, to_json and the generated reference. The config's rows are in
// experiment/config_keys.cpp and experiment/pruning_keys.cpp, the sweep file's in experiment/sweep_keys.cpp.
//   parse_keys:       raw JSON -> Root: unknown keys (with did-you-mean), required keys, types,
//                     ranges, choices and "X is only allowed with Y" (or a row's own condition,
//                     applies_if, with its refusal), in table order; a null Block object is absent
//   write_keys:       Root -> JSON with every applicable key (rows that do not apply are left out)
//   override_slot:    walks a dotted override path along the rows (array indices, free objects)
//   reference_markdown: the table as Markdown, one section per top-level object
// The value readers (read_int_at_least, read_number, ...) give the wording every row shares.
// Tests: tests/experiment/test_config.cpp, tests/experiment/test_sweep.cpp
#pragma once

#include <array>
#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/json_errors.h"

namespace st::experiment {

// ---------------------------------------------------------------------------------------------
// Choice tables: the JSON spelling of every enum value, in declaration order.

template <class E>
struct Choice {
  E value;
  const char* text;
};

template <class E, size_t N>
const char* choice_text(const Choice<E> (&table)[N], E value) {
  for (const auto& c : table)
    if (c.value == value) return c.text;
  return "?";
}

template <class E, size_t N>
std::vector<std::string> choice_names(const Choice<E> (&table)[N]) {
  std::vector<std::string> names;
  for (const auto& c : table) names.push_back(c.text);
  return names;
}

// "\"a\", \"b\", \"c\"".
std::string quoted_list(const std::vector<std::string>& items);

// ---------------------------------------------------------------------------------------------
// Value readers: each throws ConfigError("<path>...") with the shared wording.

// An interval for numbers; hi = +inf for no upper bound. text(): "[0, 1)", "> 0", ">= 0".
struct Range {
  double lo;
  bool lo_closed;
  double hi = std::numeric_limits<double>::infinity();
  bool hi_closed = false;
  std::string text() const;
};

[[noreturn]] void fail_key(const std::string& message);
long long read_integer(const nlohmann::json& v, const std::string& path);
int read_int_at_least(const nlohmann::json& v, const std::string& path, int lo);
double read_number(const nlohmann::json& v, const std::string& path, const Range& range);
bool read_bool(const nlohmann::json& v, const std::string& path);
std::string read_string(const nlohmann::json& v, const std::string& path);
// An int >= lo or an [h, w] pair of them.
std::array<int, 2> read_pair(const nlohmann::json& v, const std::string& path, int lo);

template <class E, size_t N>
E read_choice(const nlohmann::json& v, const std::string& path, const Choice<E> (&table)[N]) {
  const std::vector<std::string> names = choice_names(table);
  if (!v.is_string()) fail_key(path + ": expected a string, one of " + quoted_list(names) + ", got " + describe_value(v));
  const std::string s = v.get<std::string>();
  for (const auto& c : table)
    if (s == c.text) return c.value;
  fail_key(path + " = \"" + excerpt(s) + "\" is not one of " + quoted_list(names) + did_you_mean(s, names));
}

// ---------------------------------------------------------------------------------------------
// Rows.

template <class Root>
struct Key {
  // Free: an object whose inside the row checks itself. Block: an optional object whose own keys are
  // rows below it; `read` gets the object (or null) and records that it is present.
  enum Shape { Value, ObjectArray, Free, Block };

  std::string path;   // "optimizer.lr"
  std::string type;   // for the reference: "number > 0", "\"sgd\", \"adam\", \"adamw\""
  std::string help;   // one line
  std::function<void(Root&, const nlohmann::json&, const std::string& path)> read;
  std::function<nlohmann::json(const Root&)> write;  // null: nothing to write
  std::function<void(Root&)> fill_default;  // a default that depends on earlier keys (else Root{}'s)
  std::string default_doc;                  // the reference's default ("" = write(Root{}))
  bool required = false;
  std::string when_key, when_value;  // applies only when write(when_key) is the string when_value
  Shape shape = Value;
  std::vector<std::string> element_keys;  // ObjectArray: the keys of one element
  std::string missing_hint;  // required: what to write, appended to "missing required key" ("e.g. [0.5, 0.9]")
  // Beyond when_key: the row applies only while applies_if holds (its block is present, the chosen
  // method reads the key); a value given where it does not is refused with refusal(root).
  std::function<bool(const Root&)> applies_if;
  std::function<std::string(const Root&)> refusal;
  std::string applies_doc;  // the reference's Applies column for applies_if
};

template <class Root>
using KeyTable = std::vector<Key<Root>>;

// A rule over several keys, checked after every row was read.
template <class Root>
using KeyRule = std::function<void(const Root&)>;

// Rows that take a field by accessor: `get` is a generic lambda returning a reference into Root;
// `read_value(json, path)` checks and converts the JSON value, and the field is written back as is.
template <class Root, class Get, class Read>
Key<Root> value_key(const char* path, std::string type, const char* help, Get get, Read read_value) {
  Key<Root> k;
  k.path = path;
  k.type = std::move(type);
  k.help = help;
  k.read = [get, read_value](Root& r, const nlohmann::json& v, const std::string& p) { get(r) = read_value(v, p); };
  k.write = [get](const Root& r) { return nlohmann::json(get(r)); };
  return k;
}

template <class Root, class Get>
Key<Root> int_key(const char* path, Get get, int lo, const char* help) {
  return value_key<Root>(path, "integer >= " + std::to_string(lo), help, get,
                         [lo](const nlohmann::json& v, const std::string& p) { return read_int_at_least(v, p, lo); });
}

template <class Root, class Get>
Key<Root> number_key(const char* path, Get get, Range range, const char* help) {
  return value_key<Root>(path, "number " + (std::isinf(range.hi) ? range.text() : "in " + range.text()), help, get,
                         [range](const nlohmann::json& v, const std::string& p) { return read_number(v, p, range); });
}

template <class Root, class Get>
Key<Root> bool_key(const char* path, Get get, const char* help) {
  return value_key<Root>(path, "boolean", help, get, read_bool);
}

template <class Root, class Get>
Key<Root> string_key(const char* path, Get get, const char* help) {
  return value_key<Root>(path, "string", help, get, read_string);
}

template <class Root, class E, size_t N, class Get>
Key<Root> choice_key(const char* path, Get get, const Choice<E> (&table)[N], const char* help) {
  Key<Root> k;
  k.path = path;
  k.type = quoted_list(choice_names(table));
  k.help = help;
  k.read = [get, &table](Root& r, const nlohmann::json& v, const std::string& p) { get(r) = read_choice(v, p, table); };
  k.write = [get, &table](const Root& r) { return nlohmann::json(choice_text(table, get(r))); };
  return k;
}

// Chainable modifiers for a row.
template <class Root>
Key<Root> required(Key<Root> k) {
  k.required = true;
  return k;
}
template <class Root>
Key<Root> when(Key<Root> k, const char* key, const char* value) {
  k.when_key = key;
  k.when_value = value;
  return k;
}

// ---------------------------------------------------------------------------------------------
// The drivers (experiment/key_table.cpp holds the untemplated parts).

namespace key_table_detail {
// "a.b.c" -> {"a", "b", "c"}.
std::vector<std::string> split_path(const std::string& path);
// The distinct next segments below `prefix` ("" = top level) among `paths`, in table order.
std::vector<std::string> children(const std::vector<std::string>& paths, const std::string& prefix);
const nlohmann::json* find_path(const nlohmann::json& raw, const std::string& path);
void set_path(nlohmann::json& out, const std::string& path, nlohmann::json value);
std::string join(const std::string& prefix, const std::string& key);
// The object at `path` in `raw` has only keys among `allowed`.
void check_object(const nlohmann::json& v, const std::string& path, const std::vector<std::string>& allowed);
}  // namespace key_table_detail

template <class Root>
std::vector<std::string> key_paths(const KeyTable<Root>& table) {
  std::vector<std::string> out;
  for (const auto& k : table) out.push_back(k.path);
  return out;
}

template <class Root>
const Key<Root>* find_key(const KeyTable<Root>& table, const std::string& path) {
  for (const auto& k : table)
    if (k.path == path) return &k;
  return nullptr;
}

template <class Root>
bool applies(const KeyTable<Root>& table, const Key<Root>& k, const Root& r) {
  if (k.applies_if && !k.applies_if(r)) return false;
  if (k.when_key.empty()) return true;
  const nlohmann::json have = find_key(table, k.when_key)->write(r);
  return have.is_string() && have.get<std::string>() == k.when_value;
}

// Reads `raw` into `root` (which holds the defaults), row by row. `required_sections` are objects
// that must be present ("data", "model"). Errors are ConfigError without a file prefix.
// Why `k` (or its section `what`) may not be given here.
template <class Root>
std::string refusal_text(const KeyTable<Root>& table, const Key<Root>& k, const Root& r, const std::string& what) {
  if (k.applies_if && !k.applies_if(r)) return k.refusal(r);
  const std::string have = find_key(table, k.when_key)->write(r).dump();
  return what + " is only allowed with " + k.when_key + " \"" + k.when_value + "\" (" +
         key_table_detail::split_path(k.when_key).back() + " is " + have + ")";
}

template <class Root>
void parse_keys(const KeyTable<Root>& table, const std::vector<std::string>& required_sections,
                const nlohmann::json& raw, Root& root) {
  namespace d = key_table_detail;
  const std::vector<std::string> paths = key_paths(table);
  d::check_object(raw, "", d::children(paths, ""));
  std::vector<std::string> entered;
  for (const Key<Root>& k : table) {
    const std::vector<std::string> segs = d::split_path(k.path);
    std::string section;
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      section = d::join(section, segs[i]);
      if (std::find(entered.begin(), entered.end(), section) != entered.end()) continue;
      entered.push_back(section);
      const nlohmann::json* s = d::find_path(raw, section);
      if (!s) {
        if (std::find(required_sections.begin(), required_sections.end(), section) != required_sections.end())
          fail_key("missing required key \"" + section + "\"");
        continue;
      }
      const Key<Root>* block = find_key(table, section);
      if (s->is_null() && block && block->shape == Key<Root>::Block) continue;  // its row read the null
      if (!k.when_key.empty() && !applies(table, k, root)) fail_key(refusal_text(table, k, root, section));
      d::check_object(*s, section, d::children(paths, section));
    }
    const nlohmann::json* v = d::find_path(raw, k.path);
    const bool apply = applies(table, k, root);
    if (v && !apply) fail_key(refusal_text(table, k, root, k.path));
    if (!apply) continue;
    if (v) {
      k.read(root, *v, k.path);
    } else if (k.required) {
      fail_key("missing required key \"" + k.path + "\"" +
               (k.when_key.empty() ? "" : " (" + k.when_key + " \"" + k.when_value + "\")") +
               (k.missing_hint.empty() ? "" : " (" + k.missing_hint + ")"));
    } else if (k.fill_default) {
      k.fill_default(root);
    }
  }
}

template <class Root>
nlohmann::json write_keys(const KeyTable<Root>& table, const Root& root) {
  nlohmann::json out = nlohmann::json::object();
  for (const Key<Root>& k : table) {
    if (!applies(table, k, root)) continue;
    nlohmann::json v = k.write(root);
    if (!v.is_null()) key_table_detail::set_path(out, k.path, std::move(v));
  }
  return out;
}

// The slot in `raw` that an override of `segments` ("model", "layers", "2", "kernel") sets: objects on
// the way are created, array elements must exist, and below a Free row anything goes. Throws
// ConfigError (unknown key with did-you-mean, a value is not an object, a bad index).
nlohmann::json& override_slot(const std::vector<std::string>& paths, const std::vector<int>& shapes,
                              const std::vector<std::vector<std::string>>& element_keys,
                              const std::vector<std::string>& segments, nlohmann::json& raw);

template <class Root>
nlohmann::json& override_slot(const KeyTable<Root>& table, const std::vector<std::string>& segments,
                              nlohmann::json& raw) {
  std::vector<int> shapes;
  std::vector<std::vector<std::string>> elements;
  for (const auto& k : table) {
    shapes.push_back(k.shape);
    elements.push_back(k.element_keys);
  }
  return override_slot(key_paths(table), shapes, elements, segments, raw);
}

// The reference: per top-level section a Markdown table of key, type, default, when, meaning.
template <class Root>
std::string reference_markdown(const KeyTable<Root>& table) {
  const Root defaults{};
  std::string out;
  std::string section = "\x01";
  for (const Key<Root>& k : table) {
    const std::vector<std::string> segs = key_table_detail::split_path(k.path);
    const std::string top = segs.size() > 1 || k.shape == Key<Root>::Block ? segs[0] : "";
    if (top != section) {
      section = top;
      out += "\n### " + (top.empty() ? std::string("Top level") : "`" + top + "`") + "\n\n";
      out += "| Key | Type | Default | Applies | Meaning |\n|---|---|---|---|---|\n";
    }
    std::string def = k.default_doc;
    if (def.empty()) def = k.required ? "required" : "`" + k.write(defaults).dump() + "`";
    const std::string cond = !k.applies_doc.empty() ? k.applies_doc
                             : k.when_key.empty()    ? ""
                                                     : "`" + k.when_key + "` = `\"" + k.when_value + "\"`";
    out += "| `" + k.path + "` | " + k.type + " | " + def + " | " + cond + " | " + k.help + " |\n";
  }
  return out;
}

}  // namespace st::experiment
