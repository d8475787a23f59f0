// tests/experiment/test_shipped_configs.cpp — every shipped config and sweep file loads, and every
// committed run folder's config.json (written by to_json when it ran) parses back to the same value
// for every key it holds (older runs hold fewer "sparse" keys), so a change to the key table cannot
// orphan a committed result.
#include <doctest/doctest.h>

#include <filesystem>

#include "experiment/config.h"
#include "experiment/json_errors.h"
#include "experiment/sweep.h"

using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

// Every key of `saved` is in `now` with the same value ("" = so; else the first key that is not).
std::string first_mismatch(const nlohmann::json& saved, const nlohmann::json& now, const std::string& path) {
  if (!saved.is_object()) return saved == now ? "" : path;
  if (!now.is_object()) return path;
  for (const auto& item : saved.items()) {
    const std::string p = path.empty() ? item.key() : path + "." + item.key();
    if (!now.contains(item.key())) return p;
    const std::string d = first_mismatch(item.value(), now[item.key()], p);
    if (!d.empty()) return d;
  }
  return "";
}

// Sweep files name their base config relative to the repository root.
struct InSourceDir {
  fs::path before = fs::current_path();
  InSourceDir() { fs::current_path(ST_SOURCE_DIR); }
  ~InSourceDir() { fs::current_path(before); }
};

}  // namespace

TEST_CASE("shipped configs: every configs/*.json loads as a config or a sweep") {
  const InSourceDir here;
  const fs::path dir = "configs";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    const std::string path = entry.path().string();
    CAPTURE(path);
    const nlohmann::json raw = parse_user_json(read_user_file(path, "config"), path);
    if (raw.contains("sparsities")) {
      CHECK_NOTHROW(resolve_points(load_sweep(path)));
    } else {
      CHECK_NOTHROW(load_config(path));
    }
    ++files;
  }
  CHECK(files > 0);
}

TEST_CASE("shipped configs: committed run folders' config.json read back to the same value of every key they hold") {
  const fs::path dir = fs::path(ST_SOURCE_DIR) / "results";
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename() != "config.json") continue;
    const std::string path = entry.path().string();
    CAPTURE(path);
    const nlohmann::json saved = parse_user_json(read_user_file(path, "run config"), path);
    CHECK(first_mismatch(saved, to_json(parse_config(saved, path)), "") == "");
    ++files;
  }
  CHECK(files > 0);
}
