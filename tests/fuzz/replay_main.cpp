// tests/fuzz/replay_main.cpp — main() for replaying a fuzz target without libFuzzer (any compiler):
// every file of tests/fuzz/corpus/<target>/ (the seeds) and tests/fuzz/regressions/<target>/ (inputs
// that once crashed, kept when fixed) goes through LLVMFuzzerTestOneInput once. A crash or abort
// there fails the ctest test; so does a missing corpus, so a renamed folder cannot pass by
// replaying nothing.
//   usage: fuzz_replay_<target> <tests/fuzz folder> <target>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

void replay(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Printed first: when an input crashes, the last line names it.
  std::printf("%s\n", file.c_str());
  std::fflush(stdout);
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <tests/fuzz folder> <target>\n", argv[0]);
    return 2;
  }
  const fs::path corpus = fs::path(argv[1]) / "corpus" / argv[2];
  const fs::path regressions = fs::path(argv[1]) / "regressions" / argv[2];
  std::vector<fs::path> files = fs::is_directory(corpus) ? files_under(corpus) : std::vector<fs::path>{};
  if (files.empty()) {
    std::fprintf(stderr, "%s: no seed inputs there\n", corpus.c_str());
    return 2;
  }
  if (fs::is_directory(regressions)) {
    const std::vector<fs::path> more = files_under(regressions);
    files.insert(files.end(), more.begin(), more.end());
  }
  for (const fs::path& f : files) replay(f);
  std::printf("%zu inputs replayed\n", files.size());
  return 0;
}
