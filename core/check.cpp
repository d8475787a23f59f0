#include "core/check.h"

namespace st {

std::string excerpt(const std::string& text, size_t keep) {
  if (text.size() <= keep + 20) return text;
  return text.substr(0, keep) + "... (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace st

namespace st::detail {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  throw std::logic_error(concat("internal error at ", file, ":", line, ": ", expr,
                                msg.empty() ? "" : " — ", msg));
}

}  // namespace st::detail
