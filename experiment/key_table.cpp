// experiment/key_table.cpp — the value readers and the untemplated parts of the key-table drivers.
#include "experiment/key_table.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace st::experiment {

using nlohmann::json;

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out;
}

std::string Range::text() const {
  if (std::isinf(hi)) return (lo_closed ? ">= " : "> ") + number_text(lo);
  return std::string(lo_closed ? "[" : "(") + number_text(lo) + ", " + number_text(hi) + (hi_closed ? "]" : ")");
}

void fail_key(const std::string& message) { throw ConfigError(message); }

long long read_integer(const json& v, const std::string& path) {
  if (!v.is_number_integer()) fail_key(path + ": expected an integer, got " + describe_value(v));
  if (v.is_number_unsigned() && v.get<unsigned long long>() > static_cast<unsigned long long>(LLONG_MAX))
    fail_key(path + " = " + v.dump() + " is too large");
  return v.get<long long>();
}

int read_int_at_least(const json& v, const std::string& path, int lo) {
  const long long x = read_integer(v, path);
  if (x < lo) fail_key(path + " = " + std::to_string(x) + " is out of range (allowed: >= " + std::to_string(lo) + ")");
  if (x > INT_MAX)
    fail_key(path + " = " + std::to_string(x) + " is out of range (allowed: at most " + std::to_string(INT_MAX) + ")");
  return static_cast<int>(x);
}

double read_number(const json& v, const std::string& path, const Range& r) {
  if (!v.is_number()) fail_key(path + ": expected a number, got " + describe_value(v));
  const double x = v.get<double>();
  const bool ok = (r.lo_closed ? x >= r.lo : x > r.lo) && (r.hi_closed ? x <= r.hi : x < r.hi);
  if (!ok) fail_key(path + " = " + number_text(x) + " is out of range (allowed: " + r.text() + ")");
  return x;
}

bool read_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) fail_key(path + ": expected a boolean (true or false), got " + describe_value(v));
  return v.get<bool>();
}

std::string read_string(const json& v, const std::string& path) {
  if (!v.is_string()) fail_key(path + ": expected a string, got " + describe_value(v));
  return v.get<std::string>();
}

std::array<int, 2> read_pair(const json& v, const std::string& path, int lo) {
  if (v.is_number_integer()) {
    const int x = read_int_at_least(v, path, lo);
    return {x, x};
  }
  if (!v.is_array() || v.size() != 2)
    fail_key(path + ": expected an integer or an [h, w] pair of integers, got " + describe_value(v));
  return {read_int_at_least(v[0], path + "[0]", lo), read_int_at_least(v[1], path + "[1]", lo)};
}

namespace key_table_detail {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string seg;
  while (std::getline(ss, seg, '.')) out.push_back(seg);
  return out;
}

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::vector<std::string> children(const std::vector<std::string>& paths, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    if (!prefix.empty() && p.compare(0, prefix.size() + 1, prefix + ".") != 0) continue;
    const std::string rest = prefix.empty() ? p : p.substr(prefix.size() + 1);
    const std::string next = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), next) == out.end()) out.push_back(next);
  }
  return out;
}

const json* find_path(const json& raw, const std::string& path) {
  const json* cur = &raw;
  for (const std::string& seg : split_path(path)) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(seg);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void set_path(json& out, const std::string& path, json value) {
  json* cur = &out;
  for (const std::string& seg : split_path(path)) cur = &(*cur)[seg];
  *cur = std::move(value);
}

void check_object(const json& v, const std::string& path, const std::vector<std::string>& allowed) {
  if (!v.is_object())
    fail_key((path.empty() ? std::string("the config") : path) + ": expected an object, got " + describe_value(v));
  for (const auto& item : v.items())
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
      fail_key("unknown key \"" + excerpt(join(path, item.key())) + "\"" + did_you_mean(item.key(), allowed));
}

}  // namespace key_table_detail

json& override_slot(const std::vector<std::string>& paths, const std::vector<int>& shapes,
                    const std::vector<std::vector<std::string>>& element_keys,
                    const std::vector<std::string>& segments, json& raw) {
  namespace d = key_table_detail;
  enum Mode { Object, Value, Free, Array, Element };
  Mode mode = Object;
  std::string node;       // Object: the table path of the object
  size_t row = 0;         // Array, Element: the row
  json* cur = &raw;
  std::string path;       // the walked path, in message spelling ("model.layers[2].kernel")
  for (const std::string& seg : segments) {
    if (mode == Array) {
      // An index into an element that already exists: overrides edit elements, they do not add them.
      const bool digits = std::all_of(seg.begin(), seg.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
      if (!digits) fail_key("\"" + path + "\" is an array; expected an index, got \"" + seg + "\"");
      // Past 9 digits it is out of range anyway (and stoul would throw past 2^64).
      const size_t index = seg.size() <= 9 ? std::stoul(seg) : std::numeric_limits<size_t>::max();
      if (!cur->is_array() || index >= cur->size())
        fail_key("\"" + path + "\" has no element " + seg + " in the config (" +
                 (cur->is_array() ? std::to_string(cur->size()) + " elements" : std::string("not an array")) + ")");
      cur = &(*cur)[index];
      path += "[" + seg + "]";
      mode = Element;
      continue;
    }
    const std::string next_path = path.empty() ? seg : path + "." + seg;
    if (mode == Value) fail_key("unknown key \"" + excerpt(next_path) + "\" (\"" + path + "\" is a value, not an object)");
    if (mode == Object) {
      const std::vector<std::string> keys = d::children(paths, node);
      if (std::find(keys.begin(), keys.end(), seg) == keys.end())
        fail_key("unknown key \"" + excerpt(next_path) + "\"" + did_you_mean(seg, keys));
      node = d::join(node, seg);
      const auto it = std::find(paths.begin(), paths.end(), node);
      if (it != paths.end()) {
        row = static_cast<size_t>(it - paths.begin());
        mode = shapes[row] == 1 ? Array : shapes[row] == 2 ? Free : shapes[row] == 3 ? Object : Value;
      }
    } else if (mode == Element) {
      const std::vector<std::string>& keys = element_keys[row];
      if (std::find(keys.begin(), keys.end(), seg) == keys.end())
        fail_key("unknown key \"" + excerpt(next_path) + "\"" + did_you_mean(seg, keys));
      mode = Value;
    }
    if (cur->is_null()) *cur = json::object();
    if (!cur->is_object()) fail_key("cannot set \"" + next_path + "\": \"" + path + "\" is not an object in the config");
    cur = &(*cur)[seg];
    path = next_path;
  }
  return *cur;
}

}  // namespace st::experiment
