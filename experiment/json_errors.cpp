#include "experiment/json_errors.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace st::experiment {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A SAX handler around nlohmann's DOM builder that knows where in the document it is (the key path,
// for messages) and refuses what parse_user_json refuses, as early as the parser meets it.
template <class Json>
class BoundedSax : public nlohmann::json_sax<Json> {
  using Base = nlohmann::json_sax<Json>;

 public:
  BoundedSax(Json& result, const std::string& text, const std::string& where)
      : dom_(result, /*allow_exceptions=*/true), text_(text), where_(where) {}

  bool null() override { return value(), dom_.null(); }
  bool boolean(bool v) override { return value(), dom_.boolean(v); }
  bool number_integer(typename Base::number_integer_t v) override { return value(), dom_.number_integer(v); }
  bool number_unsigned(typename Base::number_unsigned_t v) override { return value(), dom_.number_unsigned(v); }
  bool number_float(typename Base::number_float_t v, const typename Base::string_t& s) override {
    return value(), dom_.number_float(v, s);
  }
  bool string(typename Base::string_t& v) override { return value(), dom_.string(v); }
  bool binary(typename Base::binary_t& v) override { return value(), dom_.binary(v); }
  bool start_object(std::size_t n) override { return open(true), dom_.start_object(n); }
  bool start_array(std::size_t n) override { return open(false), dom_.start_array(n); }
  bool end_object() override { return stack_.pop_back(), dom_.end_object(); }
  bool end_array() override { return stack_.pop_back(), dom_.end_array(); }
  bool key(typename Base::string_t& k) override {
    Frame& f = stack_.back();
    f.key = k;
    if (!f.keys.insert(k).second) throw ConfigError(where_ + ": duplicate key \"" + excerpt(path()) + "\"");
    return dom_.key(k);
  }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) override {
    const std::string at = " at " + location(position) + key_note();
    // nlohmann's out_of_range 406: a number literal beyond a double ("1e400").
    if (ex.id == 406)
      throw JsonLimitError(where_ + ": number " + excerpt(last_token, 40) + at +
                           " is out of range (a number must lie within +-1.8e308)");
    std::string detail = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 6: syntax error ..."
    if (const size_t colon = detail.find(": "); colon != std::string::npos) detail = detail.substr(colon + 2);
    throw ConfigError(where_ + ": invalid JSON" + at + ": " + excerpt(detail, 160));
  }

 private:
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
    std::string key;
    long index = -1;
  };

  // A value starts: in an array it is the next element.
  void value() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().index;
  }
  void open(bool is_object) {
    value();
    if (static_cast<int>(stack_.size()) >= kMaxJsonDepth)
      throw JsonLimitError(where_ + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                           " levels" + key_note(/*levels=*/3) + "; no config needs more");
    stack_.push_back({is_object, {}, "", -1});
  }

  // The key path through the outermost `levels` frames ("pruning[0][0]..." when cut).
  std::string path(size_t levels = SIZE_MAX) const {
    std::string p;
    for (const auto& f : stack_) {
      if (levels-- == 0) return p + "...";
      if (f.is_object && !f.key.empty()) p += (p.empty() ? "" : ".") + f.key;
      else if (!f.is_object && f.index >= 0) p += "[" + std::to_string(f.index) + "]";
    }
    return p;
  }
  std::string key_note(size_t levels = SIZE_MAX) const {
    const std::string p = path(levels);
    return p.empty() ? "" : " (key \"" + excerpt(p) + "\")";
  }
  // "line 3, column 14" of the byte just read.
  std::string location(std::size_t position) const {
    const size_t end = std::min(position, text_.size());
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i + 1 < end; ++i)
      if (text_[i] == '\n') ++line, line_start = i + 1;
    return "line " + std::to_string(line) + ", column " + std::to_string(end - line_start);
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  const std::string& text_;
  const std::string& where_;
  std::vector<Frame> stack_;
};

template <class Json>
Json parse_bounded(const std::string& text, const std::string& where) {
  Json result;
  BoundedSax<Json> sax(result, text, where);
  Json::sax_parse(text, &sax);
  return result;
}

}  // namespace

nlohmann::json parse_user_json(const std::string& text, const std::string& where) {
  return parse_bounded<nlohmann::json>(text, where);
}

nlohmann::ordered_json parse_user_ordered_json(const std::string& text, const std::string& where) {
  return parse_bounded<nlohmann::ordered_json>(text, where);
}

std::string read_user_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(path + ": is a directory; expected a " + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open " + what + " (" + std::strerror(errno) + ")");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read " + what + " (" + std::strerror(errno) + ")");
  return buffer.str();
}

std::string number_text(double v) {
  if (std::abs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  return nlohmann::json(v).dump();  // the shortest text that reads back as v
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  // The distance table is |word| x |candidate|: a huge word is no typo of a short key.
  if (word.size() > 64) return "";
  const std::string w = lower(word);
  size_t best = std::numeric_limits<size_t>::max();
  std::string best_key;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(w, lower(c));
    if (d < best) best = d, best_key = c;
  }
  if (best_key.empty()) return "";
  if (best <= 1 || (best <= 3 && best * 3 <= w.size())) return " (did you mean \"" + best_key + "\"?)";
  return "";
}

}  // namespace st::experiment
