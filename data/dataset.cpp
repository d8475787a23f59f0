// data/dataset.cpp — MNIST / Fashion-MNIST from IDX files, the synthetic problem, splits and
// normalization; see dataset.h for the contract.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "data/idx.h"
#include "data/random.h"

namespace st::data {

namespace {

namespace fs = std::filesystem;

constexpr int kIdxClasses = 10;  // MNIST's digits, Fashion-MNIST's garments

// Stream ids for mix_seed: each use of the seed gets its own stream.
constexpr uint64_t kStreamSplit = 1, kStreamPrototypes = 2, kStreamSynthTrain = 3,
                   kStreamSynthTest = 4;

std::string find_idx_file(const std::string& dir, const std::string& base) {
    const fs::path raw = fs::path(dir) / base;
    const fs::path gz = fs::path(dir) / (base + ".gz");
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
        throw std::runtime_error(dir + ": is a file; data.dir (or --data-dir) must be the folder "
                                       "holding the IDX files");
    if (fs::is_regular_file(raw, ec)) return raw.string();
    if (fs::is_regular_file(gz, ec)) return gz.string();
    for (const fs::path& p : {raw, gz})
        if (fs::is_directory(p, ec))
            throw std::runtime_error(p.string() + ": is a directory; expected the IDX file " + base);
    throw std::runtime_error(dir + ": cannot find " + base + " (looked for " + raw.string() +
                             " and " + gz.string() +
                             "); run scripts/fetch_data.sh or set data.dir");
}

// Which of a training set's `size` samples the validation split holds (1): the last `validation` of a
// seeded shuffle. Empty when validation is 0.
std::vector<uint8_t> held_out_samples(const std::string& train_name, int64_t size, int64_t validation,
                                      uint64_t seed) {
    if (validation < 0)
        throw std::runtime_error("data.validation = " + std::to_string(validation) +
                                 ": expected >= 0");
    if (validation == 0) return {};
    if (validation >= size)
        throw std::runtime_error("data.validation = " + std::to_string(validation) +
                                 ": must be smaller than the training set (" + train_name + " has " +
                                 std::to_string(size) + " samples)");
    std::vector<int64_t> order(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i) order[size_t(i)] = i;
    SplitMix64 rng(mix_seed(seed, kStreamSplit));
    shuffle(order.data(), size, rng);
    std::vector<uint8_t> held_out(static_cast<size_t>(size), 0);
    for (int64_t i = size - validation; i < size; ++i) held_out[size_t(order[size_t(i)])] = 1;
    return held_out;
}

// Mean and population std from sums over n values; a constant channel gets std 1.
void finish_statistics(double sum, double sum_sq, double n, float& mean, float& stdev) {
    mean = 0.0f;
    stdev = 1.0f;
    if (n == 0) return;
    const double m = sum / n;
    const double var = std::max(0.0, sum_sq / n - m * m);
    mean = float(m);
    // A constant channel carries no information; dividing by 1 keeps it finite.
    stdev = var > 1e-12 ? float(std::sqrt(var)) : 1.0f;
}

// One split of an MNIST-format dataset as read: pixels (N, H, W) bytes, labels checked.
struct IdxSplit {
    IdxArray images;
    std::vector<int32_t> labels;
    int64_t size() const { return images.dims[0]; }
    int64_t sample_numel() const { return int64_t(images.dims[1]) * images.dims[2]; }
};

IdxSplit read_idx_split(const std::string& dir, const std::string& prefix, const std::string& name) {
    constexpr int num_classes = kIdxClasses;
    const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
    IdxSplit split;
    split.images = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    const IdxArray& images = split.images;

    if (images.type != idx_type::u8 || images.dims.size() != 3)
        throw std::runtime_error(images_path + ": expected a 3-D ubyte array (N×H×W images), got " +
                                 std::to_string(images.dims.size()) + "-D " +
                                 idx_type_name(images.type));
    if (labels.type != idx_type::u8 || labels.dims.size() != 1)
        throw std::runtime_error(labels_path + ": expected a 1-D ubyte array (N labels), got " +
                                 std::to_string(labels.dims.size()) + "-D " +
                                 idx_type_name(labels.type));
    if (images.dims[0] != labels.dims[0])
        throw std::runtime_error(labels_path + ": has " + std::to_string(labels.dims[0]) +
                                 " labels but " + images_path + " has " +
                                 std::to_string(images.dims[0]) + " images");

    // An empty split would train on nothing or report 0% accuracy as if measured; no
    // configuration asks for one, so the file is damaged.
    if (images.dims[0] == 0)
        throw std::runtime_error(images_path + ": holds no images (the " + name +
                                 " split would be empty); expected a non-empty IDX file");

    split.labels.resize(size_t(images.dims[0]));
    for (int64_t i = 0; i < images.dims[0]; ++i) {
        const int label = labels.data[size_t(i)];
        if (label >= num_classes)
            throw std::runtime_error(labels_path + ": label " + std::to_string(label) +
                                     " at index " + std::to_string(i) + " is out of range (expected 0.." +
                                     std::to_string(num_classes - 1) + ")");
        split.labels[size_t(i)] = label;
    }
    return split;
}

Dataset empty_dataset(const std::string& name, int height, int width) {
    Dataset d;
    d.name = name;
    d.channels = 1;
    d.height = height;
    d.width = width;
    d.num_classes = kIdxClasses;
    return d;
}

// The samples of `raw` whose held-out flag is `which` (every sample when `held_out` is empty), in
// file order, each byte v as pixel[v]. One pass: the images are written once, on first touch.
Dataset convert_split(const IdxSplit& raw, const std::vector<uint8_t>& held_out, uint8_t which,
                      const std::string& name, const float (&pixel)[256]) {
    Dataset d = empty_dataset(name, raw.images.dims[1], raw.images.dims[2]);
    const int64_t numel = raw.sample_numel();
    std::vector<int64_t> source;  // sample j of d is sample source[j] of raw
    for (int64_t i = 0; i < raw.size(); ++i)
        if (held_out.empty() || held_out[size_t(i)] == which) source.push_back(i);
    d.size = int64_t(source.size());
    d.images.resize(size_t(d.size * numel));  // not zeroed (LargePageAllocator): written below
    d.labels.resize(size_t(d.size));
    const uint8_t* bytes = raw.images.data.data();
    float* images = d.images.data();
    // On every thread: most of the time is the kernel providing fresh pages at first touch.
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < d.size; ++j) {
        const uint8_t* src = bytes + source[size_t(j)] * numel;
        float* dst = images + j * numel;
        for (int64_t k = 0; k < numel; ++k) dst[k] = pixel[src[k]];
    }
    for (int64_t j = 0; j < d.size; ++j) d.labels[size_t(j)] = raw.labels[size_t(source[size_t(j)])];
    return d;
}

// Mean and population std of the training pixels (v / 255), from a histogram of the bytes of the
// samples not held out: the values channel_statistics adds over the converted floats, added in
// another order (the floats came out equal on the test fixtures, MNIST and Fashion-MNIST).
void byte_statistics(const IdxSplit& raw, const std::vector<uint8_t>& held_out, float& mean, float& stdev) {
    int64_t count[256] = {};
    const int64_t numel = raw.sample_numel(), size = raw.size();
    const uint8_t* bytes = raw.images.data.data();
    const uint8_t* held = held_out.empty() ? nullptr : held_out.data();
    // Integer counts: any split over threads sums to the same numbers.
#pragma omp parallel
    {
        // Four tables taken in turn: runs of equal bytes (MNIST's background) would otherwise make
        // each increment wait for the one before.
        int64_t local[4][256] = {};
#pragma omp for schedule(static)
        for (int64_t i = 0; i < size; ++i) {
            if (held && held[i]) continue;
            const uint8_t* src = bytes + i * numel;
            int64_t k = 0;
            for (; k + 4 <= numel; k += 4) {
                ++local[0][src[k]];
                ++local[1][src[k + 1]];
                ++local[2][src[k + 2]];
                ++local[3][src[k + 3]];
            }
            for (; k < numel; ++k) ++local[0][src[k]];
        }
#pragma omp critical(st_byte_statistics)
        for (int v = 0; v < 256; ++v) count[v] += local[0][v] + local[1][v] + local[2][v] + local[3][v];
    }
    double sum = 0, sum_sq = 0, n = 0;
    for (int v = 0; v < 256; ++v) {
        const double x = float(v) / 255.0f;
        sum += double(count[v]) * x;
        sum_sq += double(count[v]) * (x * x);
        n += double(count[v]);
    }
    finish_statistics(sum, sum_sq, n, mean, stdev);
}

// MNIST and Fashion-MNIST: the bytes of each file are converted once, straight into the split they
// belong to, already standardized (by a table of the 256 values: the bits standardize() gives).
DatasetSplits load_mnist_format(const DataOptions& o) {
    const std::string dir = o.dir.empty() ? default_dir(o.dataset) : o.dir;
    const std::string name = dataset_name(o.dataset);
    const IdxSplit train = read_idx_split(dir, "train", name + "/train");
    const IdxSplit test = read_idx_split(dir, "t10k", name + "/test");
    if (train.images.dims[1] != test.images.dims[1] || train.images.dims[2] != test.images.dims[2])
        throw std::runtime_error(dir + ": train images are " + std::to_string(train.images.dims[1]) +
                                 "×" + std::to_string(train.images.dims[2]) + " but test images are " +
                                 std::to_string(test.images.dims[1]) + "×" +
                                 std::to_string(test.images.dims[2]));
    const std::vector<uint8_t> held_out = held_out_samples(name + "/train", train.size(), o.validation, o.seed);

    DatasetSplits s;
    float pixel[256];
    if (o.normalize) {
        s.channel_mean.assign(1, 0.f);
        s.channel_std.assign(1, 1.f);
        byte_statistics(train, held_out, s.channel_mean[0], s.channel_std[0]);
    }
    for (int v = 0; v < 256; ++v) {
        pixel[v] = float(v) / 255.0f;
        if (o.normalize) pixel[v] = (pixel[v] - s.channel_mean[0]) * (1.0f / s.channel_std[0]);
    }
    s.train = convert_split(train, held_out, 0, name + "/train", pixel);
    if (o.validation > 0)
        s.validation = convert_split(train, held_out, 1, name + "/validation", pixel);
    else
        s.validation = empty_dataset(name + "/validation", s.train.height, s.train.width);
    s.test = convert_split(test, {}, 0, name + "/test", pixel);
    return s;
}

void require_positive(const char* key, int64_t value) {
    if (value <= 0)
        throw std::runtime_error(std::string("data.") + key + " = " + std::to_string(value) +
                                 ": expected a positive number");
}

Dataset synthetic_split(const DataOptions& o, const std::vector<float>& prototypes, int64_t size,
                        uint64_t stream, const std::string& name) {
    // Noise std 0.5 against prototype pixels in [0, 1): classes overlap per pixel, yet the
    // prototypes are ~11 noise-stds apart in 784-D, so a linear model separates them in a few
    // steps while the numbers still look like images.
    constexpr double kNoise = 0.5;
    Dataset d;
    d.name = name;
    d.size = size;
    d.channels = o.synthetic_channels;
    d.height = o.synthetic_height;
    d.width = o.synthetic_width;
    d.num_classes = o.synthetic_classes;
    const int64_t numel = d.sample_numel();
    d.images.resize(size_t(size * numel));
    d.labels.resize(size_t(size));
    SplitMix64 rng(mix_seed(o.seed, stream));
    for (int64_t i = 0; i < size; ++i) {
        const int32_t label = int32_t(rng.below(uint64_t(d.num_classes)));
        d.labels[size_t(i)] = label;
        const float* proto = prototypes.data() + label * numel;
        float* x = d.images.data() + i * numel;
        for (int64_t k = 0; k < numel; ++k) x[k] = float(proto[k] + kNoise * rng.normal());
    }
    return d;
}

DatasetSplits load_synthetic(const DataOptions& o) {
    require_positive("synthetic_train", o.synthetic_train);
    require_positive("synthetic_test", o.synthetic_test);
    require_positive("synthetic_channels", o.synthetic_channels);
    require_positive("synthetic_height", o.synthetic_height);
    require_positive("synthetic_width", o.synthetic_width);
    if (o.synthetic_classes < 2)
        throw std::runtime_error("data.synthetic_classes = " + std::to_string(o.synthetic_classes) +
                                 ": expected at least 2");
    const int64_t numel = int64_t(o.synthetic_channels) * o.synthetic_height * o.synthetic_width;
    std::vector<float> prototypes(size_t(o.synthetic_classes * numel));
    SplitMix64 rng(mix_seed(o.seed, kStreamPrototypes));
    for (float& p : prototypes) p = float(rng.uniform());

    DatasetSplits s;
    s.train = synthetic_split(o, prototypes, o.synthetic_train, kStreamSynthTrain, "synthetic/train");
    s.test = synthetic_split(o, prototypes, o.synthetic_test, kStreamSynthTest, "synthetic/test");
    return s;
}

std::string split_base(const std::string& name) {
    const size_t slash = name.rfind('/');
    return slash == std::string::npos ? name : name.substr(0, slash);
}

}  // namespace

Dataset split_validation(Dataset& train, int64_t validation, uint64_t seed) {
    Dataset val;
    val.name = split_base(train.name) + "/validation";
    val.channels = train.channels;
    val.height = train.height;
    val.width = train.width;
    val.num_classes = train.num_classes;
    const std::vector<uint8_t> held_out = held_out_samples(train.name, train.size, validation, seed);
    if (held_out.empty()) return val;

    const int64_t numel = train.sample_numel();
    val.size = validation;
    val.images.resize(size_t(validation * numel));
    val.labels.resize(size_t(validation));
    // Compact train in place (write index never passes read index) and copy out validation,
    // both in original order.
    int64_t kept = 0, moved = 0;
    for (int64_t i = 0; i < train.size; ++i) {
        const float* src = train.images.data() + i * numel;
        if (held_out[size_t(i)]) {
            std::copy(src, src + numel, val.images.data() + moved * numel);
            val.labels[size_t(moved++)] = train.labels[size_t(i)];
        } else {
            if (kept != i) std::copy(src, src + numel, train.images.data() + kept * numel);
            train.labels[size_t(kept++)] = train.labels[size_t(i)];
        }
    }
    train.size = kept;
    train.images.resize(size_t(kept * numel));
    train.images.shrink_to_fit();
    train.labels.resize(size_t(kept));
    return val;
}

void channel_statistics(const Dataset& d, std::vector<float>& mean, std::vector<float>& stdev) {
    const int64_t plane = int64_t(d.height) * d.width;
    std::vector<double> sum(size_t(d.channels), 0.0), sum_sq(size_t(d.channels), 0.0);
    for (int64_t i = 0; i < d.size; ++i)
        for (int c = 0; c < d.channels; ++c) {
            const float* x = d.images.data() + (i * d.channels + c) * plane;
            double s = 0, s2 = 0;
            for (int64_t k = 0; k < plane; ++k) {
                s += x[k];
                s2 += double(x[k]) * x[k];
            }
            sum[size_t(c)] += s;
            sum_sq[size_t(c)] += s2;
        }
    mean.assign(size_t(d.channels), 0.0f);
    stdev.assign(size_t(d.channels), 1.0f);
    const double n = double(d.size) * double(plane);
    for (int c = 0; c < d.channels; ++c)
        finish_statistics(sum[size_t(c)], sum_sq[size_t(c)], n, mean[size_t(c)], stdev[size_t(c)]);
}

void standardize(Dataset& d, const std::vector<float>& mean, const std::vector<float>& stdev) {
    const int64_t plane = int64_t(d.height) * d.width;
    for (int64_t i = 0; i < d.size; ++i)
        for (int c = 0; c < d.channels; ++c) {
            float* x = d.images.data() + (i * d.channels + c) * plane;
            const float m = mean[size_t(c)], inv = 1.0f / stdev[size_t(c)];
            for (int64_t k = 0; k < plane; ++k) x[k] = (x[k] - m) * inv;
        }
}

const char* dataset_name(DatasetKind kind) {
    switch (kind) {
        case DatasetKind::mnist: return "mnist";
        case DatasetKind::fashion_mnist: return "fashion_mnist";
        case DatasetKind::synthetic: return "synthetic";
    }
    return "?";
}

const char* default_dir(DatasetKind kind) {
    switch (kind) {
        case DatasetKind::mnist: return "datasets/mnist";
        case DatasetKind::fashion_mnist: return "datasets/fashion-mnist";
        case DatasetKind::synthetic: return "";
    }
    return "";
}

DatasetSplits load_dataset(const DataOptions& o) {
    DatasetSplits s;
    switch (o.dataset) {
        case DatasetKind::mnist:
        case DatasetKind::fashion_mnist: return load_mnist_format(o);  // split and standardized
        case DatasetKind::synthetic: s = load_synthetic(o); break;
        default:
            throw std::runtime_error("data.dataset: not a DatasetKind (" +
                                     std::to_string(static_cast<int>(o.dataset)) + ")");
    }

    s.validation = split_validation(s.train, o.validation, o.seed);
    if (o.normalize) {
        channel_statistics(s.train, s.channel_mean, s.channel_std);
        standardize(s.train, s.channel_mean, s.channel_std);
        standardize(s.validation, s.channel_mean, s.channel_std);
        standardize(s.test, s.channel_mean, s.channel_std);
    }
    return s;
}

}  // namespace st::data
