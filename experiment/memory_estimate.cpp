#include "experiment/memory_estimate.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "distributed/communicator.h"
#include "experiment/setup.h"
#include "models/builder.h"
#include "models/model.h"
#include "pruning/method.h"
#include "pruning/pruner.h"

namespace st::experiment {

namespace {

constexpr double kFloat = 4;

// Per-sample output size of each layer after the input; parameters counted into `params`, the
// Linear layers' inputs into `linear_inputs` and their widest output into `widest`.
// Stops at a shape the builder would refuse (it reports those itself).
double walk_layers(const std::vector<models::LayerSpec>& layers, double c, double h, double w,
                   bool flat, double& params, double& weights, double& linear_inputs,
                   double& widest) {
  double activations = 0;
  for (const auto& l : layers) {
    if (l.type == LayerType::flatten) {
      c = c * h * w, h = w = 1, flat = true;
    } else if (l.type == LayerType::linear) {
      linear_inputs += c * h * w;
      widest = std::max(widest, double(l.out));
      params += c * l.out + (l.bias ? l.out : 0);
      weights += c * l.out;
      c = l.out;
    } else if (l.type == LayerType::conv2d || l.type == LayerType::maxpool2d || l.type == LayerType::avgpool2d) {
      const bool conv = l.type == LayerType::conv2d;
      const int sh = l.stride_h ? l.stride_h : conv ? 1 : l.kernel_h;
      const int sw = l.stride_w ? l.stride_w : conv ? 1 : l.kernel_w;
      const double oh = std::floor((h + 2 * l.pad_h - l.kernel_h) / sh) + 1;
      const double ow = std::floor((w + 2 * l.pad_w - l.kernel_w) / sw) + 1;
      if (flat || oh < 1 || ow < 1) break;
      if (conv) {
        params += double(l.out) * c * l.kernel_h * l.kernel_w + (l.bias ? l.out : 0);
        weights += double(l.out) * c * l.kernel_h * l.kernel_w;
        c = l.out;
      }
      h = oh, w = ow;
    }
    activations += c * h * w;
  }
  return activations;
}

}  // namespace

MemoryEstimate estimate_memory(const Config& c) {
  const data::Dataset shape = sample_shape(c);
  MemoryEstimate m;
  double linear_inputs = 0, widest = 0;
  const double per_sample =
      walk_layers(models::architecture_layers(model_spec(c), shape.num_classes), shape.channels,
                  shape.height, shape.width, false, m.parameters, m.weights, linear_inputs, widest);
  // Adam keeps two moments per parameter, SGD with momentum one.
  const double state = c.optimizer.type == OptimizerType::sgd ? (c.optimizer.momentum > 0 ? 1 : 0) : 2;
  m.parameter_bytes = m.parameters * kFloat * (2 + state);
  m.dense_parameter_bytes = m.parameter_bytes;
  // RigL regrows sparse Linear layers from the x and dy its update steps keep (pruning/pruner.h) on
  // the CPU in one process; a sparse conv layer, CUDA or several ranks make those steps dense.
  const auto layers = models::architecture_layers(model_spec(c), shape.num_classes);
  const bool has_conv = std::any_of(layers.begin(), layers.end(), [](const models::LayerSpec& l) { return l.type == LayerType::conv2d; });
  const bool rigl = c.pruning && c.pruning->method == pruning::Method::Rigl;
  const bool rigl_sparse = rigl && !has_conv && c.device == Device::cpu && distributed::launched_ranks() <= 1;
  if (c.pruning && pruning::starts_sparse(*c.pruning) && (!rigl || rigl_sparse)) {
    // The pruned layers start sparse: at least (1 - target) of the weights are nonzeros (erk/er
    // reach the target over every layer, layerwise/uniform over the pruned ones), each costing
    // kCsrBytesPerNonzero plus the optimizer's compact state; a layer left dense costs less per
    // entry than a sparse one only above 37% density, so the cheaper of the two bounds the cost.
    const double nonzeros = (1.0 - c.pruning->target) * m.weights;
    const double sparse = nonzeros * (kCsrBytesPerNonzero + kFloat * state);
    const double dense = m.weights * kFloat * (2 + state);
    m.parameter_bytes = (m.parameters - m.weights) * kFloat * (2 + state) + std::min(sparse, dense);
    // A RigL update: its candidates (at most 2 per dropped weight, 16 bytes each) and a gradient
    // panel (16 MB) beside the layer; the kept x and dy are counted with the activations below.
    if (rigl) m.parameter_bytes += nonzeros * c.pruning->schedule.drop_fraction * 32 + 16e6;
  }
  const bool synthetic = c.data.dataset == DatasetKind::synthetic;
  const double train = synthetic ? c.data.synthetic.train : 60000, test = synthetic ? c.data.synthetic.test : 10000;
  // Forward outputs and their gradients for the larger of the two batch sizes (the trainer's
  // batch buffers take the size asked for, even beyond the split's).
  const double batch = std::max(c.train.batch_size, c.train.eval_batch_size);
  m.activation_bytes = per_sample * batch * kFloat * 2;
  // A sparse RigL update step also keeps each sparse layer's input and output gradient.
  if (rigl_sparse) m.activation_bytes = std::max(m.activation_bytes, per_sample * c.train.batch_size * kFloat * 4);
  // A CSR Linear layer on the cpu keeps its packed input (32-sample tiles) for the weight gradient;
  // counted where no layer is wide enough for the feature-major path, which keeps none.
  if (c.pruning && c.device == Device::cpu && widest < models::Model::FeatureMajorRule{}.min_width)
    m.activation_bytes += linear_inputs * std::ceil(c.train.batch_size / 32.0) * 32 * kFloat;
  m.dataset_bytes = (train + test) * (double(shape.channels) * shape.height * shape.width + 1) * kFloat;
  return m;
}

std::string bytes_text(double bytes) {
  char buf[32];
  if (bytes < 1e3)
    std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  else if (bytes < 1e6)
    std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1e3);
  else if (bytes < 1e9)
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  else if (bytes < 1e12)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.2f TB", bytes / 1e12);
  return buf;
}

int64_t peak_resident_bytes() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

double available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    double kb = 0;
    if (s >> key >> kb && key == "MemAvailable:") return kb * 1024;
  }
  return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
}

void check_memory(const Config& c, double available) {
  const MemoryEstimate m = estimate_memory(c);
  if (m.total() <= available) return;
  std::string part;
  if (m.parameter_bytes >= m.activation_bytes && m.parameter_bytes >= m.dataset_bytes) {
    const char* key = c.model.arch == Arch::mlp ? "model.hidden" : c.model.arch == Arch::layers ? "model.layers" : "model.arch";
    char count[32];
    std::snprintf(count, sizeof count, "%.3g", m.parameters);
    part = std::string(key) + ": " + count + " parameters, with their gradients and optimizer state, take " +
           bytes_text(m.parameter_bytes);
    if (m.parameter_bytes < m.dense_parameter_bytes) {
      part += " at pruning.target " + std::to_string(c.pruning->target).substr(0, 6) + " (sparse from the start)";
    } else if (c.pruning) {
      // Say which keys make the run hold the dense matrix, and what would not.
      const std::string method = std::string("pruning.method \"") + pruning::to_string(c.pruning->method) + "\"";
      const char* sparse_rule = "criterion \"random\", granularity \"element\" and a per-layer distribution (not \"global\")";
      if (c.pruning->method == pruning::Method::Rigl)
        part += "; " + method + " makes its layers dense at its updates with conv layers, on cuda or on several ranks (static and set build their layers sparse)";
      else if (pruning::make_method(c.pruning->method)->traits().sparse_from_start)
        part += "; " + method + " builds its layers sparse only with " + sparse_rule;
      else
        part += "; " + method + " prunes a dense model (static, set and rigl with " + sparse_rule + " build their layers sparse)";
    }
  } else if (m.activation_bytes >= m.dataset_bytes) {
    part = std::string(c.train.batch_size >= c.train.eval_batch_size ? "train.batch_size" : "train.eval_batch_size") +
           ": one batch's activations take " + bytes_text(m.activation_bytes);
  } else {
    part = std::string(c.data.dataset == DatasetKind::synthetic ? "data.synthetic (train, test and the sample size)"
                                                            : "data.dataset") +
           ": the dataset takes " + bytes_text(m.dataset_bytes);
  }
  char exact[64];
  std::snprintf(exact, sizeof exact, " (%.0f bytes)", m.total());
  throw ConfigError("config \"" + c.name + "\" needs at least " + bytes_text(m.total()) + exact + " of memory (" +
                    part + "), but this machine has " + bytes_text(available) + " available");
}

}  // namespace st::experiment
