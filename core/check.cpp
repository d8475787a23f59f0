#include "core/check.h"

namespace st::detail {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  throw std::logic_error(concat("internal error at ", file, ":", line, ": ", expr,
                                msg.empty() ? "" : " — ", msg));
}

}  // namespace st::detail
