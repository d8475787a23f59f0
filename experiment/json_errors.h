// experiment/json_errors.h — reading JSON a user wrote, and the wording shared by the strict JSON
// validators (the key tables of experiment/config_keys.cpp and experiment/sweep_keys.cpp): the one
// bounded parser every reader of user JSON goes through, what a value is ("an integer (3.5)"), and a
// "did you mean" for typos.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/check.h"  // excerpt: every echoed user value goes through it
#include "experiment/config.h"

namespace st::experiment {

// The deepest nesting accepted in JSON from a user (a config nests 5 levels). nlohmann's dump(),
// comparisons and our validators recurse over a value, so a deeper one is refused while it is
// parsed, before anything recurses on it.
constexpr int kMaxJsonDepth = 64;

// JSON that parses but cannot be used as written: nested deeper than kMaxJsonDepth, or a number
// beyond a double's range. (A --set value that is not JSON at all is a string; these are errors.)
struct JsonLimitError : ConfigError {
  using ConfigError::ConfigError;
};

// Parses JSON text from a file, flag or checkpoint the user gave. Refuses duplicate keys (the
// parser would silently keep the last), nesting deeper than kMaxJsonDepth and out-of-range numbers;
// each error reads "<where>: ... at line L, column C (key "a.b[2]"): what was wrong".
nlohmann::json parse_user_json(const std::string& text, const std::string& where);
nlohmann::ordered_json parse_user_ordered_json(const std::string& text, const std::string& where);

// The whole of a file the user named as `what` ("config file (JSON)"); a missing, unreadable file or
// a directory is a ConfigError naming the path and what was expected.
std::string read_user_file(const std::string& path, const std::string& what);

// A number as messages show it: the shortest text that reads back as it ("0.001", "1e+308",
// "60000", "inf"), never 309 digits.
std::string number_text(double v);

// ` (did you mean "x"?)` for the closest candidate (case-insensitive Levenshtein distance where
// swapping two neighbours counts as one edit: "trian" -> "train"), or "" when none is close enough.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// "a boolean", "an integer", "a string", ... (works for json and ordered_json).
template <class Json>
std::string type_name(const Json& v) {
  using t = nlohmann::json::value_t;
  switch (v.type()) {
    case t::null: return "null";
    case t::boolean: return "a boolean";
    case t::number_integer:
    case t::number_unsigned: return "an integer";
    case t::number_float: return "a number";
    case t::string: return "a string";
    case t::array: return "an array";
    case t::object: return "an object";
    default: return "an unsupported value";
  }
}

// "a string (\"fast\")": what the user wrote, shortened when long.
template <class Json>
std::string describe_value(const Json& v) {
  return type_name(v) + " (" + excerpt(v.dump(), 40) + ")";
}

}  // namespace st::experiment
