// app/cli.cpp — the output-path check the subcommands share.
#include "app/cli.h"

#include <unistd.h>

#include <filesystem>

#include "core/check.h"

namespace st::app {

namespace fs = std::filesystem;

void check_writable(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  ST_CHECK(!fs::is_directory(p, ec), flag, " ", path, ": is a directory; expected a file to write");
  if (fs::exists(p, ec)) {
    ST_CHECK(::access(path.c_str(), W_OK) == 0, flag, " ", path, ": the file is not writable");
    return;
  }
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  ST_CHECK(fs::is_directory(parent, ec), flag, " ", path, ": the folder ", parent.string(), " does not exist");
  ST_CHECK(::access(parent.c_str(), W_OK) == 0, flag, " ", path, ": the folder ", parent.string(),
           " is not writable");
}

}  // namespace st::app
