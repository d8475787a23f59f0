// tests/experiment/test_data_shuffle.cpp — data.shuffle: true (the default) shuffles the training set
// each epoch, false keeps the file order in every epoch, and a resumed run with false ends as an
// uninterrupted one.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "data/loader.h"
#include "experiment/config.h"
#include "experiment/safetensors.h"
#include "experiment/trainer.h"

using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

Config shuffle_config(bool shuffle) {
  const nlohmann::json raw = {
      {"seed", 3},
      {"threads", 2},
      {"data", {{"dataset", "synthetic"}, {"shuffle", shuffle},
                {"synthetic", {{"train", 256}, {"test", 64}, {"classes", 4}, {"height", 6}, {"width", 6}}}}},
      {"model", {{"arch", "mlp"}, {"hidden", {16}}}},
      {"train", {{"epochs", 2}, {"batch_size", 32}}},
  };
  return parse_config(raw, "shuffle");
}

std::vector<NamedTensor> weights(const std::string& run_dir) {
  return read_safetensors(run_dir + "/checkpoint.safetensors").tensors;
}

}  // namespace

TEST_CASE("data.shuffle: defaults to true, round-trips, and false keeps the file order every epoch") {
  CHECK(Config{}.data.shuffle);
  const Config c = shuffle_config(false);
  CHECK_FALSE(c.data.shuffle);
  CHECK(to_json(c)["data"]["shuffle"] == false);
  CHECK(parse_config(to_json(c)) == c);

  st::data::Dataset d;
  d.size = 10, d.channels = 1, d.height = 1, d.width = 1, d.num_classes = 2;
  d.images.assign(10, 0.f);
  d.labels.assign(10, 0);
  st::data::Loader loader(d, 4, c.data.shuffle, c.seed);
  loader.start_epoch(0);
  const std::vector<int64_t> first = loader.order();
  loader.start_epoch(1);
  CHECK(loader.order() == first);
  for (size_t i = 0; i < first.size(); ++i) CHECK(first[i] == static_cast<int64_t>(i));
}

TEST_CASE("data.shuffle: false reaches the trainer, and a resumed run ends as an uninterrupted one") {
  const fs::path dir = fs::temp_directory_path() / ("st_shuffle_" + std::to_string(getpid()));
  fs::remove_all(dir);
  RunOptions shuffled, full, part, cont;
  shuffled.quiet = full.quiet = part.quiet = cont.quiet = true;
  shuffled.run_dir = (dir / "shuffled").string();
  full.run_dir = (dir / "full").string();
  part.run_dir = (dir / "part").string();
  train(shuffle_config(true), shuffled);
  train(shuffle_config(false), full);
  part.stop_after_epochs = 1;
  train(shuffle_config(false), part);
  resume(part.run_dir, cont);
  const auto ws = weights(shuffled.run_dir), wf = weights(full.run_dir), wp = weights(part.run_dir);
  REQUIRE(wf.size() == wp.size());
  REQUIRE(wf.size() == ws.size());
  bool differs = false;
  for (size_t i = 0; i < wf.size(); ++i) {
    CAPTURE(wf[i].name);
    CHECK(wf[i].bytes == wp[i].bytes);
    differs = differs || wf[i].bytes != ws[i].bytes;
  }
  CHECK(differs);  // the order changed the training, so the flag reached the loader
  fs::remove_all(dir);
}
