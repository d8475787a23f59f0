// data/dataset.h — in-memory image classification datasets and their train/validation/test splits.
//   mnist, fashion_mnist: the four IDX files (raw or .gz) from DataOptions::dir.
//   synthetic: a seeded, learnable problem (class prototype + Gaussian noise) for fast tests.
// images (size, C, H, W) float, pixels /255 then (if normalize) standardized per channel with the
// mean/std of the training split only (after the validation hold-out); the same statistics are
// applied to validation and test. Validation = the last `validation` samples of the training set
// shuffled by `seed`; both parts keep the files' original relative order. IDX bytes are converted
// once, straight into their split and standardized (statistics from a histogram of the bytes); the
// synthetic data goes through split_validation, channel_statistics and standardize, which give the
// same bits on the same pixels (tested).
// Tests: tests/data/test_dataset.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/large_pages.h"

namespace st::data {

struct Dataset {
    std::string name;            // "mnist/train", "synthetic/validation", ...
    int64_t size = 0;
    int channels = 0, height = 0, width = 0, num_classes = 0;
    // (size, channels, height, width); on huge pages when large (data/large_pages.h)
    std::vector<float, LargePageAllocator<float>> images;
    std::vector<int32_t> labels; // (size), each in [0, num_classes)

    int64_t sample_numel() const { return int64_t(channels) * height * width; }
};

enum class DatasetKind { mnist, fashion_mnist, synthetic };

// The name a dataset's splits carry ("mnist" -> "mnist/train", "mnist/test").
const char* dataset_name(DatasetKind kind);
// Where the IDX files are looked for when DataOptions::dir is empty, relative to the current
// directory: "datasets/mnist", "datasets/fashion-mnist"; "" for synthetic (no files).
const char* default_dir(DatasetKind kind);

struct DataOptions {
    DatasetKind dataset = DatasetKind::mnist;
    std::string dir;             // empty: default_dir(dataset)
    int64_t validation = 0;      // samples held out of train
    bool normalize = true;
    uint64_t seed = 0;
    // synthetic:
    int64_t synthetic_train = 2048, synthetic_test = 512;
    int synthetic_classes = 10;
    int synthetic_channels = 1, synthetic_height = 28, synthetic_width = 28;
};

struct DatasetSplits {
    Dataset train, validation, test;   // validation.size == 0 when none was asked for
    std::vector<float> channel_mean;   // statistics applied by normalize (empty if !normalize)
    std::vector<float> channel_std;
};

DatasetSplits load_dataset(const DataOptions& options);

// Pieces of load_dataset, public for tests and tools.
// Moves the last `validation` samples of a seeded shuffle of `train` into the returned set.
Dataset split_validation(Dataset& train, int64_t validation, uint64_t seed);
// Per-channel mean and (population) std over a dataset's images, accumulated in double.
void channel_statistics(const Dataset& d, std::vector<float>& mean, std::vector<float>& stdev);
// images = (images - mean[c]) / std[c]
void standardize(Dataset& d, const std::vector<float>& mean, const std::vector<float>& stdev);

}  // namespace st::data
