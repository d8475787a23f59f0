// Sweeps: validation of the sweep file (its key table: defaults, required keys, reference), point
// naming and order, override merging, resumability (with a stub trainer that counts calls), and the
// curve files (CSV, markdown, SVG).
// The sparsity key here is optimizer.weight_decay so that nothing depends on the pruning schema.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiment/sweep.h"
#include "experiment/sweep_report.h"

using namespace st;
using namespace st::experiment;
namespace fs = std::filesystem;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps method order as written

namespace {

std::string temp_dir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() / ("st_sweep_" + tag + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ojson base_config() {
  return {{"seed", 3},
          {"data", {{"dataset", "synthetic"}, {"synthetic", {{"train", 64}, {"test", 32}}}}},
          {"model", {{"arch", "mlp"}, {"hidden", {8}}}},
          {"train", {{"epochs", 2}, {"batch_size", 16}}},
          {"optimizer", {{"type", "sgd"}, {"lr", 0.1}}}};
}

// A sweep over optimizer.weight_decay with two methods that differ by momentum / lr.
ojson sweep_json(const std::string& output) {
  return {{"name", "test_curve"},
          {"base", base_config()},
          {"overrides", {{"train.epochs", 3}}},
          {"sparsity_key", "optimizer.weight_decay"},
          {"sparsities", {0.5, 0.9}},
          {"methods", {{"zeta", {{"optimizer", {{"momentum", 0.5}}}}}, {"alpha", {{"optimizer.lr", 0.2}}}}},
          {"dense_baseline", true},
          {"output", output}};
}

// The error message parse_sweep throws for `text`, or "" when it parses.
std::string sweep_error(const std::string& text) {
  try {
    resolve_points(parse_sweep(text, "s.json"));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string with(ojson j, const std::string& key, const ojson& value) {
  j[key] = value;
  return j.dump();
}

// A stub trainer: counts calls, writes the run folder files a real run would leave behind.
struct StubTrainer {
  int trains = 0, resumes = 0;
  std::vector<std::string> order;
  TrainPointFn fn() {
    return [this](const Config& c, const RunOptions& o) {
      const std::string dir = o.resume_dir.empty() ? o.run_dir : o.resume_dir;
      (o.resume_dir.empty() ? trains : resumes)++;
      order.push_back(c.name);
      fs::create_directories(dir);
      std::ofstream(dir + "/config.json") << to_json(c).dump(2);
      std::ofstream(dir + "/metrics.jsonl") << "{\"epoch\":1,\"epoch_seconds\":1.5}\n{\"epoch\":2,\"epoch_seconds\":2.0}\n";
      // Accuracy rises with momentum and falls with the "sparsity" (weight decay): distinct per point.
      const double acc = !c.pruning && c.optimizer.weight_decay == 0
                             ? 0.98
                             : 0.9 - 0.1 * c.optimizer.weight_decay + 0.01 * c.optimizer.lr;
      json s = {{"name", c.name}, {"epochs", c.train.epochs}, {"test_accuracy", acc}, {"best_val_accuracy", acc + 0.001},
                {"final", {{"test_accuracy", acc}}}, {"sparsity", c.optimizer.weight_decay}};
      std::ofstream(dir + "/summary.json") << s.dump(2);
    };
  }
};

SweepOptions quiet_options(StubTrainer& stub, std::vector<std::string>* log = nullptr) {
  SweepOptions o;
  o.quiet = true;
  o.train = stub.fn();
  o.log = [log](const std::string& line) {
    if (log) log->push_back(line);
  };
  return o;
}

}  // namespace

TEST_CASE("sweep: validation errors name the file and the key") {
  const ojson good = sweep_json("out");
  CHECK(sweep_error(good.dump()) == "");

  CHECK(sweep_error(with(good, "sparsitys", ojson::array({0.5}))).find("s.json: unknown key \"sparsitys\" (did you mean \"sparsities\"?)") == 0);
  CHECK(sweep_error(with(good, "sparsities", ojson::array())).find("s.json: sparsities: expected a non-empty array") == 0);
  CHECK(sweep_error(with(good, "sparsities", {0.5, 1.0})).find("s.json: sparsities[1] = 1.0 is out of range (allowed: [0, 1))") == 0);
  CHECK(sweep_error(with(good, "sparsities", {-0.1})).find("sparsities[0] = -0.1 is out of range") != std::string::npos);
  CHECK(sweep_error(with(good, "sparsities", {0.5, 0.5})).find("sparsities[1] = 0.5 repeats") != std::string::npos);
  CHECK(sweep_error(with(good, "sparsities", {"0.5"})).find("sparsities[0]: expected a number") != std::string::npos);
  CHECK(sweep_error(with(good, "methods", json::object())).find("s.json: methods: expected a non-empty object") == 0);
  CHECK(sweep_error(with(good, "methods", {{"dense", ojson::object()}})).find("reserved") != std::string::npos);
  CHECK(sweep_error(with(good, "methods", {{"a b", ojson::object()}})).find("not a valid method name") != std::string::npos);
  CHECK(sweep_error(with(good, "methods", {{"m", 3}})).find("methods.m: expected an object") != std::string::npos);
  CHECK(sweep_error(with(good, "dense_baseline", "yes")).find("dense_baseline: expected a boolean") != std::string::npos);
  CHECK(sweep_error(with(good, "base", "no/such/config.json")).find("base: config file \"no/such/config.json\" not found") != std::string::npos);
  CHECK(sweep_error(with(good, "sparsity_key", "optimizer.wd")).find("sparsity_key = \"optimizer.wd\" is not a config key") != std::string::npos);
  CHECK(sweep_error(with(good, "overrides", {{"train.epoch", 2}})).find("s.json: overrides: ") == 0);
  CHECK(sweep_error("{\"base\": ").find("s.json: invalid JSON") == 0);
  ojson missing = good;
  missing.erase("sparsities");
  CHECK(sweep_error(missing.dump()).find("missing required key \"sparsities\"") != std::string::npos);

  // A bad method override names the method; a point that fails validation names method and sparsity.
  const std::string bad_key = sweep_error(with(good, "methods", {{"gradual", {{"optimizer.momentun", 0.5}}}}));
  CHECK(bad_key.find("s.json: method \"gradual\": ") == 0);
  CHECK(bad_key.find("optimizer.momentun") != std::string::npos);
  const std::string bad_nested = sweep_error(with(good, "methods", {{"m", {{"optimizer", {{"typo", 1}}}}}}));
  CHECK(bad_nested.find("method \"m\"") != std::string::npos);
  CHECK(bad_nested.find("optimizer.typo") != std::string::npos);
  const std::string bad_point = sweep_error(with(good, "methods", {{"big", {{"optimizer.momentum", 1.5}}}}));
  CHECK(bad_point.find("s.json: method \"big\", sparsity 0.5: optimizer.momentum = 1.5 is out of range") == 0);
}

TEST_CASE("sweep: the key table's defaults, missing-key examples and reference") {
  ojson minimal = sweep_json("out");
  for (const char* k : {"name", "overrides", "sparsity_key", "dense_baseline", "output"}) minimal.erase(k);
  const SweepConfig s = parse_sweep(minimal.dump(), "dir/my_sweep.json");
  CHECK(s.name == "my_sweep");
  CHECK(s.output == "results/my_sweep");
  CHECK(s.overrides == json::object());
  CHECK(s.sparsity_key == "pruning.target");
  CHECK_FALSE(s.dense_baseline);
  CHECK(s.description.empty());
  CHECK(s.base_source == "dir/my_sweep.json (inline base)");

  // The required keys say what to write; an error about the base file names that file, not the sweep.
  for (const char* key : {"base", "sparsities", "methods"}) {
    ojson missing = sweep_json("out");
    missing.erase(key);
    const std::string e = sweep_error(missing.dump());
    CHECK(e.find("s.json: missing required key \"" + std::string(key) + "\" (") == 0);
  }
  const std::string dir = temp_dir("basefile_error");
  std::ofstream(dir + "/list.json") << "[1, 2]";
  const std::string base_error = sweep_error(with(sweep_json("out"), "base", dir + "/list.json"));
  CHECK(base_error.find(dir + "/list.json: expected a config object") == 0);
  fs::remove_all(dir);

  // The generated reference lists every key the reader accepts.
  const std::string ref = sweep_reference();
  for (const char* key : {"name", "description", "base", "overrides", "sparsity_key", "sparsities", "methods",
                          "dense_baseline", "output"})
    CHECK(ref.find("| `" + std::string(key) + "` |") != std::string::npos);
}

TEST_CASE("sweep: point names, order, run folders and merged overrides") {
  CHECK(point_name("one_shot", 0.5) == "one_shot_s500");
  CHECK(point_name("one_shot", 0.05) == "one_shot_s050");
  CHECK(point_name("rigl", 0.99) == "rigl_s990");
  CHECK(point_name("rigl", 0.0) == "rigl_s000");
  CHECK(point_name("rigl", 0.9995) == "rigl_s999_5");

  const SweepConfig sweep = parse_sweep(sweep_json("out/curve").dump(), "s.json");
  CHECK(sweep.name == "test_curve");
  REQUIRE(sweep.methods.size() == 2);
  CHECK(sweep.methods[0].name == "zeta");  // file order, not alphabetical
  const std::vector<SweepPoint> points = resolve_points(sweep);
  std::vector<std::string> names;
  for (const auto& p : points) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"dense", "zeta_s500", "zeta_s900", "alpha_s500", "alpha_s900"});
  CHECK(points[1].run_dir == (fs::path("out/curve") / "runs" / "zeta_s500").string());
  CHECK(points[1].config.name == "zeta_s500");
  CHECK(points[0].dense);

  // Every point: base + overrides (epochs 3) + method + the sparsity key.
  for (const auto& p : points) CHECK(p.config.train.epochs == 3);
  CHECK(points[0].config.optimizer.weight_decay == 0);
  CHECK(points[2].config.optimizer.weight_decay == 0.9);
  // Deep merge: the nested method object changes momentum and keeps the base's lr and type.
  CHECK(points[1].config.optimizer.momentum == 0.5);
  CHECK(points[1].config.optimizer.lr == 0.1);
  CHECK(points[1].config.optimizer.type == OptimizerType::sgd);
  CHECK(points[3].config.optimizer.lr == 0.2);
  CHECK(points[3].config.optimizer.momentum == 0.9);
  CHECK(points[1].config.seed == 3);
}

TEST_CASE("sweep: the dense baseline drops the pruning block; pruning overrides merge deeply") {
  ojson j = sweep_json("out");
  j["base"]["pruning"] = {{"method", "one_shot"}, {"criterion", {{"type", "magnitude"}}}, {"schedule", {{"epoch", 1}}}};
  j["sparsity_key"] = "pruning.target";
  j["methods"] = {{"a", {{"pruning", {{"schedule", {{"epoch", 2}}}}}}}, {"b", {{"pruning.criterion.type", "random"}}}};
  const std::vector<SweepPoint> points = resolve_points(parse_sweep(j.dump(), "s.json"));
  REQUIRE(points.size() == 5);
  CHECK(!points[0].config.pruning);
  CHECK(points[1].config.pruning->schedule.epoch == 2);
  CHECK(points[1].config.pruning->criterion.type == st::pruning::CriterionType::Magnitude);
  CHECK(points[1].config.pruning->method == st::pruning::Method::OneShot);
  CHECK(points[1].config.pruning->target == 0.5);
  CHECK(points[3].config.pruning->criterion.type == st::pruning::CriterionType::Random);
  CHECK(points[3].config.pruning->schedule.epoch == 1);
  CHECK(points[4].config.pruning->target == 0.9);
}

TEST_CASE("sweep: a base config file is found from the current directory or the sweep's folder") {
  const std::string dir = temp_dir("basefile");
  std::ofstream(dir + "/base.json") << base_config().dump();
  ojson j = sweep_json(dir + "/out");
  j["base"] = "base.json";
  std::ofstream(dir + "/sweep.json") << j.dump();
  const SweepConfig sweep = load_sweep(dir + "/sweep.json");
  CHECK(sweep.base_source == (fs::path(dir) / "base.json").string());
  CHECK(resolve_points(sweep).size() == 5);
  ojson no_name = j;
  no_name.erase("name");
  no_name.erase("output");
  std::ofstream(dir + "/my_curve.json") << no_name.dump();
  const SweepConfig named = load_sweep(dir + "/my_curve.json");
  CHECK(named.name == "my_curve");
  CHECK(named.output == "results/my_curve");
  fs::remove_all(dir);
}

TEST_CASE("sweep: runs every point once, skips finished ones, resumes interrupted ones") {
  const std::string dir = temp_dir("resume");
  const std::string out = dir + "/out";
  const SweepConfig sweep = parse_sweep(sweep_json(out).dump(), "s.json");

  StubTrainer stub;
  SweepReport r1 = run_sweep(sweep, quiet_options(stub));
  CHECK(stub.trains == 5);
  CHECK(stub.resumes == 0);
  CHECK(stub.order == std::vector<std::string>{"dense", "zeta_s500", "zeta_s900", "alpha_s500", "alpha_s900"});
  CHECK(r1.trained == 5);
  CHECK(r1.results.size() == 5);
  CHECK(r1.results[2].seconds == doctest::Approx(3.5));
  CHECK(r1.results[2].extra["sparsity"] == 0.9);

  // Again: nothing to train, same results read back from the run folders.
  StubTrainer again;
  SweepReport r2 = run_sweep(sweep, quiet_options(again));
  CHECK(again.trains + again.resumes == 0);
  CHECK(r2.skipped == 5);
  REQUIRE(r2.results.size() == 5);
  CHECK(r2.results[4].test_accuracy == doctest::Approx(r1.results[4].test_accuracy));

  // An interrupted point (checkpoint, no summary) is resumed; a missing one is trained from scratch.
  const std::string zeta900 = out + "/runs/zeta_s900";
  fs::remove(zeta900 + "/summary.json");
  std::ofstream(zeta900 + "/checkpoint.safetensors") << "x";
  fs::remove_all(out + "/runs/alpha_s500");
  StubTrainer third;
  SweepReport r3 = run_sweep(sweep, quiet_options(third));
  CHECK(third.resumes == 1);
  CHECK(third.trains == 1);
  CHECK(third.order == std::vector<std::string>{"zeta_s900", "alpha_s500"});
  CHECK(r3.resumed == 1);
  CHECK(r3.trained == 1);
  CHECK(r3.skipped == 3);

  // A run folder that holds a different config is refused, naming the differing key.
  ojson edited = sweep_json(out);
  edited["overrides"]["train.epochs"] = 4;
  StubTrainer fourth;
  try {
    run_sweep(parse_sweep(edited.dump(), "s.json"), quiet_options(fourth));
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("train.epochs") != std::string::npos);
    CHECK(std::string(e.what()).find("holds a run of a different config") != std::string::npos);
  }
  CHECK(fourth.trains == 0);
  fs::remove_all(dir);
}

TEST_CASE("sweep: --only, --points and --dry-run") {
  const std::string dir = temp_dir("filters");
  const SweepConfig sweep = parse_sweep(sweep_json(dir + "/out").dump(), "s.json");

  StubTrainer dry;
  std::vector<std::string> log;
  SweepOptions o = quiet_options(dry, &log);
  o.dry_run = true;
  SweepReport r = run_sweep(sweep, o);
  CHECK(dry.trains == 0);
  CHECK(r.pending == 5);
  CHECK(!fs::exists(dir + "/out"));
  std::string all;
  for (const auto& l : log) all += l + "\n";
  CHECK(all.find("[2/5] zeta_s500  (new)") != std::string::npos);
  CHECK(all.find("zeta_s500: mlp[8]") != std::string::npos);

  StubTrainer only;
  o = quiet_options(only);
  o.only = {"alpha"};
  r = run_sweep(sweep, o);
  CHECK(only.order == std::vector<std::string>{"alpha_s500", "alpha_s900"});

  StubTrainer limited;
  o = quiet_options(limited);
  o.max_points = 2;
  r = run_sweep(sweep, o);
  CHECK(limited.order == std::vector<std::string>{"dense", "zeta_s500"});
  CHECK(r.pending == 1);
  CHECK(r.skipped == 2);
  CHECK(r.results.size() == 4);

  // --only trains one method, but the curve keeps every finished point.
  StubTrainer dense_only;
  o = quiet_options(dense_only);
  o.only = {"zeta"};
  r = run_sweep(sweep, o);
  CHECK(dense_only.order == std::vector<std::string>{"zeta_s900"});
  CHECK(r.points.size() == 2);
  CHECK(r.results.size() == 5);
  CHECK(read(dir + "/out/curve.csv").find("alpha,0.9,") != std::string::npos);

  o.only = {"alpah"};
  CHECK_THROWS_WITH_AS(run_sweep(sweep, o), doctest::Contains("--only alpah: no such method"), ConfigError);
  fs::remove_all(dir);
}

TEST_CASE("sweep: --shard I/N splits the points; the shards' curve equals a single sweep's") {
  const std::string dir = temp_dir("shard");
  const SweepConfig whole = parse_sweep(sweep_json(dir + "/whole").dump(), "s.json");
  StubTrainer single;
  run_sweep(whole, quiet_options(single));

  const SweepConfig sharded = parse_sweep(sweep_json(dir + "/sharded").dump(), "s.json");
  std::vector<std::string> trained;
  for (int i = 0; i < 3; ++i) {
    StubTrainer shard;
    SweepOptions o = quiet_options(shard);
    o.shard_index = i;
    o.shard_count = 3;
    run_sweep(sharded, o);
    // Points 0..4 in sweep order: shard i takes i, i+3.
    const std::vector<std::vector<std::string>> expected = {{"dense", "alpha_s500"}, {"zeta_s500", "alpha_s900"}, {"zeta_s900"}};
    CHECK(shard.order == expected[i]);
    trained.insert(trained.end(), shard.order.begin(), shard.order.end());
  }
  std::sort(trained.begin(), trained.end());
  CHECK(std::adjacent_find(trained.begin(), trained.end()) == trained.end());  // no point twice
  CHECK(trained.size() == 5);
  // The last shard to write the curve saw every point, including those the others finished.
  std::string sharded_csv = read(dir + "/sharded/curve.csv");
  for (size_t at; (at = sharded_csv.find("/sharded/")) != std::string::npos;) sharded_csv.replace(at, 9, "/whole/");
  CHECK(sharded_csv == read(dir + "/whole/curve.csv"));  // the same but for the run folders' paths
  // A plain run afterwards trains nothing.
  StubTrainer after;
  CHECK(run_sweep(sharded, quiet_options(after)).skipped == 5);
  CHECK(after.trains + after.resumes == 0);

  CHECK(parse_shard("3/4") == std::pair<int, int>{3, 4});
  CHECK(parse_shard("0/1") == std::pair<int, int>{0, 1});
  for (const char* bad : {"4/4", "1", "-1/4", "a/4", "1/0", "1/", "/4", "1/4/5"})
    CHECK_THROWS_WITH_AS(parse_shard(bad), doctest::Contains("expected I/N with 0 <= I < N"), ConfigError);
  fs::remove_all(dir);
}

TEST_CASE("sweep: curve.csv, curve.md and curve.svg") {
  const std::string dir = temp_dir("curve");
  const std::string out = dir + "/out";
  const SweepConfig sweep = parse_sweep(sweep_json(out).dump(), "s.json");
  StubTrainer stub;
  SweepOptions o = quiet_options(stub);
  o.max_points = 3;  // dense, zeta_s500, zeta_s900: alpha is still to come
  run_sweep(sweep, o);

  const std::string csv = read(out + "/curve.csv");
  std::istringstream lines(csv);
  std::string header, dense, z500, z900, extra;
  std::getline(lines, header);
  std::getline(lines, dense);
  std::getline(lines, z500);
  std::getline(lines, z900);
  CHECK(header == "method,sparsity,fraction_remaining,test_accuracy,test_error,best_val_accuracy,epochs,seconds,run_dir,actual_sparsity");
  CHECK(dense.find("dense,0.0,1,0.98,0.02,0.981,3,3.50,") == 0);
  // zeta at 0.9: accuracy 0.9 - 0.09 + 0.001 = 0.811
  CHECK(z900.find("zeta,0.9,0.1,0.811,0.189,0.812,3,3.50," + (fs::path(out) / "runs" / "zeta_s900").string() + ",0.9") == 0);
  CHECK(!std::getline(lines, extra));

  const std::string md = read(out + "/curve.md");
  CHECK(md.find("# test_curve") == 0);
  CHECK(md.find("| sparsity | remaining | zeta | alpha |") != std::string::npos);
  CHECK(md.find("| 0.9 | 10% | 81.10 | – |") != std::string::npos);
  CHECK(md.find("Dense baseline (no pruning): **98.00%**") != std::string::npos);

  // The rest of the points: the best per row goes bold.
  run_sweep(sweep, quiet_options(stub));
  const std::string md2 = read(out + "/curve.md");
  CHECK(md2.find("| 0.5 | 50% | 85.10 | **85.20** |") != std::string::npos);

  const std::string svg = read(out + "/curve.svg");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  size_t polylines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 2);
  CHECK(svg.find(">zeta</text>") != std::string::npos);
  CHECK(svg.find(">alpha</text>") != std::string::npos);
  CHECK(svg.find(">dense</text>") != std::string::npos);
  CHECK(svg.find("stroke-dasharray") != std::string::npos);
  CHECK(svg.find(">10%</text>") != std::string::npos);
  CHECK(svg.find(">100%</text>") != std::string::npos);
  // Every opened element is closed (a cheap well-formedness check: no parser in the test deps).
  size_t opens = 0, closes = 0, self = 0;
  for (size_t i = 0; i + 1 < svg.size(); ++i) {
    if (svg[i] != '<') continue;
    if (svg[i + 1] == '/') {
      ++closes;
    } else {
      const size_t end = svg.find('>', i);
      REQUIRE(end != std::string::npos);
      if (svg[end - 1] == '/') ++self;
      else ++opens;
    }
  }
  CHECK(opens == closes);
  CHECK(self > 0);

  // Names are escaped.
  SweepConfig odd = sweep;
  odd.name = "a<b>&c";
  CHECK(curve_svg(odd, {}).find("a&lt;b&gt;&amp;c") != std::string::npos);
  CHECK(curve_svg(odd, {}).find("no finished points yet") != std::string::npos);
  fs::remove_all(dir);
}
