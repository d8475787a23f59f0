// tests/data/test_dataset.cpp — synthetic determinism and learnability, MNIST-format loading from
// small fixture files (raw and .gz), validation split, normalization, and the real MNIST /
// Fashion-MNIST files when scripts/fetch_data.sh has fetched them (doctest counts those cases as
// skipped otherwise).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include <omp.h>

#include "data/dataset.h"
#include "data/idx.h"
#include "data/random.h"
#include "data_test_util.h"

using namespace st::data;
using namespace st::data::test;

namespace {

DataOptions synthetic_options(uint64_t seed = 7) {
    DataOptions o;
    o.dataset = DatasetKind::synthetic;
    o.seed = seed;
    o.synthetic_train = 300;
    o.synthetic_test = 100;
    o.synthetic_height = 6;
    o.synthetic_width = 5;
    return o;
}

std::vector<float> sample(const Dataset& d, int64_t i) {
    const int64_t n = d.sample_numel();
    return std::vector<float>(d.images.begin() + i * n, d.images.begin() + (i + 1) * n);
}

// Writes an MNIST-format split (images N×H×W, labels N) into dir; pixel(i, k) = (i * 31 + k) % 256.
void write_split(const TempDir& dir, const std::string& prefix, int n, int h, int w, bool gz,
                 int label_count = -1, int bad_label_at = -1) {
    IdxArray images;
    images.type = idx_type::u8;
    images.dims = {n, h, w};
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < h * w; ++k) images.data.push_back(uint8_t((i * 31 + k) % 256));
    IdxArray labels;
    labels.type = idx_type::u8;
    labels.dims = {label_count < 0 ? n : label_count};
    for (int i = 0; i < labels.dims[0]; ++i) labels.data.push_back(uint8_t(i == bad_label_at ? 10 : i % 10));
    const std::string sfx = gz ? ".gz" : "";
    write_idx(dir.file(prefix + "-images-idx3-ubyte" + sfx), images, gz);
    write_idx(dir.file(prefix + "-labels-idx1-ubyte" + sfx), labels, gz);
}

DataOptions mnist_options(const TempDir& dir) {
    DataOptions o;
    o.dataset = DatasetKind::mnist;
    o.dir = dir.str();
    o.normalize = false;
    return o;
}

}  // namespace

TEST_CASE("synthetic: shapes, labels, determinism by seed") {
    const DatasetSplits a = load_dataset(synthetic_options());
    CHECK(a.train.size == 300);
    CHECK(a.test.size == 100);
    CHECK(a.validation.size == 0);
    CHECK(a.train.channels == 1);
    CHECK(a.train.height == 6);
    CHECK(a.train.width == 5);
    CHECK(a.train.num_classes == 10);
    CHECK(a.train.images.size() == 300u * 30u);
    CHECK(a.train.labels.size() == 300u);
    CHECK(a.train.name == "synthetic/train");
    std::set<int32_t> classes;
    for (int32_t l : a.train.labels) {
        CHECK(l >= 0);
        CHECK(l < 10);
        classes.insert(l);
    }
    CHECK(classes.size() == 10);

    const DatasetSplits b = load_dataset(synthetic_options());
    CHECK(a.train.images == b.train.images);
    CHECK(a.train.labels == b.train.labels);
    CHECK(a.test.images == b.test.images);
    CHECK(a.test.labels == b.test.labels);

    const DatasetSplits c = load_dataset(synthetic_options(8));
    CHECK(a.train.images != c.train.images);
    CHECK(a.train.images != a.test.images);
}

TEST_CASE("synthetic: learnable (nearest class mean reaches high test accuracy)") {
    DataOptions o = synthetic_options(3);
    o.synthetic_height = 28;
    o.synthetic_width = 28;
    o.synthetic_train = 500;
    o.synthetic_test = 200;
    const DatasetSplits s = load_dataset(o);
    const int64_t n = s.train.sample_numel();
    std::vector<double> centroid(size_t(10 * n), 0.0);
    std::vector<int> count(10, 0);
    for (int64_t i = 0; i < s.train.size; ++i) {
        const int32_t l = s.train.labels[size_t(i)];
        ++count[size_t(l)];
        for (int64_t k = 0; k < n; ++k) centroid[size_t(l * n + k)] += s.train.images[size_t(i * n + k)];
    }
    for (int c = 0; c < 10; ++c)
        for (int64_t k = 0; k < n; ++k) centroid[size_t(c * n + k)] /= std::max(1, count[size_t(c)]);
    int correct = 0;
    for (int64_t i = 0; i < s.test.size; ++i) {
        int best = -1;
        double best_d = 1e300;
        for (int c = 0; c < 10; ++c) {
            double d = 0;
            for (int64_t k = 0; k < n; ++k) {
                const double diff = s.test.images[size_t(i * n + k)] - centroid[size_t(c * n + k)];
                d += diff * diff;
            }
            if (d < best_d) best_d = d, best = c;
        }
        correct += best == s.test.labels[size_t(i)];
    }
    CHECK(double(correct) / double(s.test.size) > 0.95);
}

TEST_CASE("synthetic: invalid options name the key") {
    DataOptions o = synthetic_options();
    o.synthetic_classes = 1;
    CHECK(contains(error_of([&] { load_dataset(o); }), "data.synthetic_classes"));
    o = synthetic_options();
    o.synthetic_width = 0;
    CHECK(contains(error_of([&] { load_dataset(o); }), "data.synthetic_width"));
    o = synthetic_options();
    o.dataset = static_cast<DatasetKind>(99);  // not a value of the enum
    const std::string msg = error_of([&] { load_dataset(o); });
    CHECK(contains(msg, "data.dataset"));
    CHECK(contains(msg, "not a DatasetKind"));
    CHECK(contains(msg, "99"));
}

TEST_CASE("validation split: sizes, disjointness, original order, determinism") {
    DataOptions o = synthetic_options();
    o.normalize = false;
    const DatasetSplits full = load_dataset(o);
    o.validation = 60;
    const DatasetSplits s = load_dataset(o);
    CHECK(s.train.size == 240);
    CHECK(s.validation.size == 60);
    CHECK(s.validation.name == "synthetic/validation");
    CHECK(s.validation.images.size() == 60u * 30u);
    CHECK(s.validation.labels.size() == 60u);
    CHECK(s.train.images.size() == 240u * 30u);
    CHECK(s.test.images == full.test.images);

    // Map each original sample to its index (synthetic samples are distinct with probability 1).
    std::map<std::vector<float>, int64_t> index_of;
    for (int64_t i = 0; i < full.train.size; ++i) index_of[sample(full.train, i)] = i;
    REQUIRE(index_of.size() == size_t(full.train.size));
    auto indices = [&](const Dataset& d) {
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < d.size; ++i) {
            auto it = index_of.find(sample(d, i));
            REQUIRE(it != index_of.end());
            CHECK(d.labels[size_t(i)] == full.train.labels[size_t(it->second)]);
            idx.push_back(it->second);
        }
        return idx;
    };
    const auto train_idx = indices(s.train), val_idx = indices(s.validation);
    std::set<int64_t> all(train_idx.begin(), train_idx.end());
    for (int64_t i : val_idx) CHECK(all.count(i) == 0);
    all.insert(val_idx.begin(), val_idx.end());
    CHECK(all.size() == size_t(full.train.size));
    CHECK(std::is_sorted(train_idx.begin(), train_idx.end()));
    CHECK(std::is_sorted(val_idx.begin(), val_idx.end()));
    // A shuffled hold-out, not simply the file's tail.
    CHECK(val_idx.front() < full.train.size - 60);

    const DatasetSplits again = load_dataset(o);
    CHECK(again.validation.images == s.validation.images);
    CHECK(again.train.labels == s.train.labels);
    o.seed = 99;
    const DatasetSplits other_seed = load_dataset(o);
    CHECK(other_seed.validation.size == 60);
}

TEST_CASE("validation split: the split itself depends only on the seed") {
    Dataset d;
    d.name = "toy/train";
    d.size = 10;
    d.channels = d.height = d.width = 1;
    d.num_classes = 10;
    for (int i = 0; i < 10; ++i) d.images.push_back(float(i)), d.labels.push_back(i);
    Dataset d2 = d, d3 = d;
    const Dataset v = split_validation(d, 3, 5);
    const Dataset v2 = split_validation(d2, 3, 5);
    const Dataset v3 = split_validation(d3, 3, 6);
    CHECK(v.images == v2.images);
    CHECK(d.images == d2.images);
    CHECK(v.name == "toy/validation");
    CHECK(d.size == 7);
    CHECK(v.size == 3);
    CHECK(v.labels.size() == 3);
    CHECK(v3.images != v.images);  // holds for these seeds; checked once, deterministic after
}

TEST_CASE("validation split: invalid sizes") {
    DataOptions o = synthetic_options();
    o.validation = 300;
    std::string msg = error_of([&] { load_dataset(o); });
    CHECK(contains(msg, "data.validation = 300"));
    CHECK(contains(msg, "300 samples"));
    o.validation = 5000;
    CHECK(contains(error_of([&] { load_dataset(o); }), "must be smaller"));
    o.validation = -1;
    CHECK(contains(error_of([&] { load_dataset(o); }), "data.validation = -1"));
    o.validation = 299;
    CHECK(load_dataset(o).train.size == 1);
}

TEST_CASE("normalize: train statistics, applied to validation and test") {
    DataOptions o = synthetic_options(11);
    o.synthetic_channels = 3;
    o.validation = 50;
    o.normalize = false;
    const DatasetSplits raw = load_dataset(o);
    o.normalize = true;
    const DatasetSplits s = load_dataset(o);
    REQUIRE(s.channel_mean.size() == 3);
    REQUIRE(s.channel_std.size() == 3);
    CHECK(raw.channel_mean.empty());

    const int64_t plane = 30;
    for (int c = 0; c < 3; ++c) {
        // The normalized training split has mean 0 and std 1 per channel.
        double sum = 0, sum_sq = 0, raw_sum = 0;
        for (int64_t i = 0; i < s.train.size; ++i)
            for (int64_t k = 0; k < plane; ++k) {
                const double x = s.train.images[size_t((i * 3 + c) * plane + k)];
                sum += x;
                sum_sq += x * x;
                raw_sum += raw.train.images[size_t((i * 3 + c) * plane + k)];
            }
        const double n = double(s.train.size * plane);
        CHECK(sum / n == doctest::Approx(0.0).epsilon(1e-5));
        CHECK(std::sqrt(sum_sq / n) == doctest::Approx(1.0).epsilon(1e-4));
        CHECK(s.channel_mean[size_t(c)] == doctest::Approx(raw_sum / n).epsilon(1e-5));
    }
    // Validation and test use the same (train) statistics.
    for (const auto& [norm, unnorm] : {std::pair(&s.validation, &raw.validation), std::pair(&s.test, &raw.test)}) {
        REQUIRE(norm->images.size() == unnorm->images.size());
        for (size_t j = 0; j < norm->images.size(); j += 17) {
            const int c = int((j / plane) % 3);
            const float expected = (unnorm->images[j] - s.channel_mean[size_t(c)]) / s.channel_std[size_t(c)];
            CHECK(norm->images[j] == doctest::Approx(expected).epsilon(1e-5));
        }
    }
}

TEST_CASE("mnist format: loads raw and gzipped fixture files") {
    TempDir dir;
    write_split(dir, "train", 23, 4, 5, /*gz=*/false);
    write_split(dir, "t10k", 7, 4, 5, /*gz=*/true);
    const DatasetSplits s = load_dataset(mnist_options(dir));
    CHECK(s.train.size == 23);
    CHECK(s.test.size == 7);
    CHECK(s.train.channels == 1);
    CHECK(s.train.height == 4);
    CHECK(s.train.width == 5);
    CHECK(s.train.num_classes == 10);
    CHECK(s.train.name == "mnist/train");
    CHECK(s.test.name == "mnist/test");
    CHECK(s.train.images[size_t(2 * 20 + 3)] == doctest::Approx(float((2 * 31 + 3) % 256) / 255.0f));
    CHECK(s.test.images[size_t(6 * 20 + 19)] == doctest::Approx(float((6 * 31 + 19) % 256) / 255.0f));
    CHECK(s.train.labels[13] == 3);

    DataOptions o = mnist_options(dir);
    o.dataset = DatasetKind::fashion_mnist;
    o.validation = 5;
    o.normalize = true;
    const DatasetSplits f = load_dataset(o);
    CHECK(f.train.size == 18);
    CHECK(f.validation.size == 5);
    CHECK(f.validation.name == "fashion_mnist/validation");
}

TEST_CASE("mnist format: split and standardized in one pass, the bits of split_validation + standardize") {
    // The IDX path converts each byte once into its split, standardized by a table; the generic
    // path (the synthetic data's) converts, splits, takes channel_statistics and standardizes.
    const int default_threads = omp_get_max_threads();
    for (const bool constant : {false, true}) {
        CAPTURE(constant);
        TempDir dir;
        SplitMix64 rng(77);
        for (const auto& [prefix, n] : {std::pair<std::string, int>{"train", 97}, {"t10k", 31}}) {
            IdxArray images, labels;
            images.dims = {n, 5, 7};
            labels.dims = {n};
            for (int i = 0; i < n * 35; ++i) images.data.push_back(constant ? 9 : uint8_t(rng.below(256)));
            for (int i = 0; i < n; ++i) labels.data.push_back(uint8_t(rng.below(10)));
            write_idx(dir.file(prefix + "-images-idx3-ubyte"), images, false);
            write_idx(dir.file(prefix + "-labels-idx1-ubyte"), labels, prefix == "t10k");
        }
        for (const int64_t validation : {0, 1, 13, 96})
            for (const bool normalize : {false, true})
            for (const int threads : {1, 3}) {  // the conversion and histogram are split over threads
                CAPTURE(validation);
                CAPTURE(normalize);
                CAPTURE(threads);
                omp_set_num_threads(threads);
                DataOptions o = mnist_options(dir);
                o.validation = validation;
                o.normalize = normalize;
                o.seed = 5;
                const DatasetSplits s = load_dataset(o);
                DataOptions raw = o;
                raw.validation = 0;
                raw.normalize = false;
                DatasetSplits r = load_dataset(raw);
                r.validation = split_validation(r.train, validation, o.seed);
                if (normalize) {
                    channel_statistics(r.train, r.channel_mean, r.channel_std);
                    for (Dataset* d : {&r.train, &r.validation, &r.test}) standardize(*d, r.channel_mean, r.channel_std);
                }
                CHECK(s.channel_mean == r.channel_mean);
                CHECK(s.channel_std == r.channel_std);
                if (constant && normalize) CHECK(s.channel_std == std::vector<float>{1.f});
                for (const auto& [got, want] : {std::pair<const Dataset*, const Dataset*>{&s.train, &r.train},
                                                {&s.validation, &r.validation}, {&s.test, &r.test}}) {
                    CAPTURE(want->name);
                    CHECK(got->name == want->name);
                    CHECK(got->size == want->size);
                    CHECK(got->height == 5);
                    CHECK(got->width == 7);
                    CHECK(got->channels == 1);
                    CHECK(got->labels == want->labels);
                    REQUIRE(got->images.size() == want->images.size());
                    if (!got->images.empty())  // an empty split's data() may be null: no memcmp
                        CHECK(std::memcmp(got->images.data(), want->images.data(), got->images.size() * 4) == 0);
                }
                CHECK(s.validation.size == validation);
                omp_set_num_threads(default_threads);
            }
        DataOptions o = mnist_options(dir);
        o.validation = 97;
        CHECK(contains(error_of([&] { load_dataset(o); }),
                       "data.validation = 97: must be smaller than the training set (mnist/train has 97 samples)"));
        o.validation = -1;
        CHECK(contains(error_of([&] { load_dataset(o); }), "data.validation = -1: expected >= 0"));
    }
}

TEST_CASE("mnist format: missing files say what was looked for") {
    TempDir dir;
    write_split(dir, "train", 5, 2, 2, false);
    const std::string msg = error_of([&] { load_dataset(mnist_options(dir)); });
    CHECK(contains(msg, dir.file("t10k-images-idx3-ubyte")));
    CHECK(contains(msg, dir.file("t10k-images-idx3-ubyte.gz")));
    CHECK(contains(msg, "fetch_data.sh"));
}

TEST_CASE("mnist format: an empty split is refused, not scored as 0%") {
    TempDir dir;
    write_split(dir, "train", 6, 2, 2, false);
    write_split(dir, "t10k", 0, 2, 2, false);
    const std::string msg = error_of([&] { load_dataset(mnist_options(dir)); });
    CHECK(contains(msg, dir.file("t10k-images-idx3-ubyte")));
    CHECK(contains(msg, "holds no images"));
}

TEST_CASE("mnist format: a directory where a file or folder belongs is named as one") {
    TempDir dir;
    write_split(dir, "train", 6, 2, 2, false);
    std::filesystem::create_directory(dir.file("t10k-images-idx3-ubyte"));
    CHECK(contains(error_of([&] { load_dataset(mnist_options(dir)); }), "t10k-images-idx3-ubyte: is a directory"));
    DataOptions o = mnist_options(dir);
    o.dir = dir.file("train-images-idx3-ubyte");
    CHECK(contains(error_of([&] { load_dataset(o); }), "is a file; data.dir"));
}

TEST_CASE("mnist format: label/image count mismatch, bad label, wrong shapes") {
    {
        TempDir dir;
        write_split(dir, "train", 6, 2, 2, false, /*label_count=*/5);
        write_split(dir, "t10k", 3, 2, 2, false);
        const std::string msg = error_of([&] { load_dataset(mnist_options(dir)); });
        CHECK(contains(msg, dir.file("train-labels-idx1-ubyte")));
        CHECK(contains(msg, "5 labels"));
        CHECK(contains(msg, "6 images"));
    }
    {
        TempDir dir;
        write_split(dir, "train", 6, 2, 2, true, -1, /*bad_label_at=*/4);
        write_split(dir, "t10k", 3, 2, 2, false);
        const std::string msg = error_of([&] { load_dataset(mnist_options(dir)); });
        CHECK(contains(msg, dir.file("train-labels-idx1-ubyte.gz")));
        CHECK(contains(msg, "label 10 at index 4"));
    }
    {
        TempDir dir;
        write_split(dir, "train", 6, 2, 2, false);
        write_split(dir, "t10k", 3, 2, 3, false);
        CHECK(contains(error_of([&] { load_dataset(mnist_options(dir)); }), "test images are 2×3"));
    }
    {
        TempDir dir;
        write_split(dir, "train", 6, 2, 2, false);
        write_split(dir, "t10k", 3, 2, 2, false);
        IdxArray flat;
        flat.type = idx_type::u8;
        flat.dims = {6, 4};
        flat.data.assign(24, 0);
        write_idx(dir.file("train-images-idx3-ubyte"), flat, false);
        const std::string msg = error_of([&] { load_dataset(mnist_options(dir)); });
        CHECK(contains(msg, dir.file("train-images-idx3-ubyte")));
        CHECK(contains(msg, "expected a 3-D ubyte array"));
    }
}

namespace {
// datasets/<folder> in the repository, when it holds the training images and the test labels
// (raw or .gz); "" otherwise, saying so on stderr (scripts/fetch_data.sh fetches them).
std::string real_dataset_dir(const std::string& folder) {
    const std::string root = find_repo_root();
    const std::string dir = root + "/datasets/" + folder;
    const auto present = [&](const std::string& base) {
        return fs::exists(dir + "/" + base) || fs::exists(dir + "/" + base + ".gz");
    };
    if (!root.empty() && present("train-images-idx3-ubyte") && present("t10k-labels-idx1-ubyte")) return dir;
    std::fprintf(stderr, "skipping the real %s test: no files under %s (run scripts/fetch_data.sh)\n",
                 folder.c_str(), root.empty() ? "<repo root not found>" : dir.c_str());
    return {};
}

// For doctest::skip, asked when the test cases register.
bool no_real_dataset(const std::string& folder) { return real_dataset_dir(folder).empty(); }

void check_real(DatasetKind dataset, const std::string& folder, double mean, double stdev) {
    const std::string dir = real_dataset_dir(folder);
    REQUIRE(!dir.empty());
    DataOptions o;
    o.dataset = dataset;
    o.dir = dir;
    const DatasetSplits s = load_dataset(o);
    CHECK(s.train.size == 60000);
    CHECK(s.test.size == 10000);
    CHECK(s.train.height == 28);
    CHECK(s.train.width == 28);
    CHECK(s.train.images.size() == 60000u * 784u);
    REQUIRE(s.channel_mean.size() == 1);
    CHECK(s.channel_mean[0] == doctest::Approx(mean).epsilon(1e-3));
    CHECK(s.channel_std[0] == doctest::Approx(stdev).epsilon(1e-3));
    std::vector<int> per_class(10, 0);
    for (int32_t l : s.train.labels) ++per_class[size_t(l)];
    for (int c = 0; c < 10; ++c) CHECK(per_class[size_t(c)] > 5000);
}
}  // namespace

TEST_CASE("real MNIST files (skipped when absent)" * doctest::skip(no_real_dataset("mnist"))) {
    check_real(DatasetKind::mnist, "mnist", 0.1307, 0.3081);
}

TEST_CASE("real Fashion-MNIST files (skipped when absent)" *
          doctest::skip(no_real_dataset("fashion-mnist"))) {
    check_real(DatasetKind::fashion_mnist, "fashion-mnist", 0.2860, 0.3530);
}

TEST_CASE("LargePageAllocator: large buffers 2 MiB aligned, small ones ordinary, values kept") {
    using Vec = std::vector<float, LargePageAllocator<float>>;
    Vec big(size_t{3} << 20, 1.5f);  // 12 MiB
    CHECK(reinterpret_cast<uintptr_t>(big.data()) % (size_t{2} << 20) == 0);
    big.push_back(2.5f);  // reallocation copies the contents
    CHECK(big.front() == 1.5f);
    CHECK(big[big.size() - 2] == 1.5f);
    CHECK(big.back() == 2.5f);
    Vec small{1.f, 2.f, 3.f};
    CHECK(small == Vec{1.f, 2.f, 3.f});
    Vec empty;
    empty.reserve(0);
    CHECK(empty.empty());
    CHECK_THROWS_AS(LargePageAllocator<float>().allocate(static_cast<size_t>(-1) / 2), std::bad_array_new_length);
}
