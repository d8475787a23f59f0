// experiment/json_errors.h — the wording shared by the strict JSON validators (experiment/config.cpp,
// experiment/sweep.cpp): what a value is ("an integer (3.5)") and a "did you mean" for typos.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace st::experiment {

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
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return type_name(v) + " (" + text + ")";
}

}  // namespace st::experiment
