#include "experiment/setup.h"

#include <omp.h>

#include "core/check.h"
#include "core/ops.h"
#include "cuda/cusparse.h"
#include "cuda/runtime.h"

namespace st::experiment {

models::ModelSpec model_spec(const Config& c) {
  models::ModelSpec s;
  s.arch = c.model.arch;
  s.hidden = c.model.hidden;
  s.init = c.model.init;
  s.dropout = static_cast<float>(c.model.dropout);
  for (const LayerSpec& l : c.model.layers) {
    models::LayerSpec m;
    m.type = l.type;
    m.name = l.name;
    m.out = l.type == LayerType::linear ? l.out_features : l.out_channels;
    m.kernel_h = l.kernel[0];
    m.kernel_w = l.kernel[1];
    m.stride_h = l.stride[0];
    m.stride_w = l.stride[1];
    m.pad_h = l.padding[0];
    m.pad_w = l.padding[1];
    m.bias = l.bias;
    m.p = static_cast<float>(l.p);
    s.layers.push_back(m);
  }
  return s;
}

data::DataOptions data_options(const Config& c) {
  data::DataOptions d;
  d.dataset = c.data.dataset;
  d.dir = c.data.dir;
  d.validation = c.data.validation;
  d.normalize = c.data.normalize;
  d.seed = c.seed;
  d.synthetic_train = c.data.synthetic.train;
  d.synthetic_test = c.data.synthetic.test;
  d.synthetic_classes = c.data.synthetic.classes;
  d.synthetic_channels = c.data.synthetic.channels;
  d.synthetic_height = c.data.synthetic.height;
  d.synthetic_width = c.data.synthetic.width;
  return d;
}

OptimizerOptions optimizer_options(const Config& c) {
  OptimizerOptions o;
  o.type = c.optimizer.type;
  o.lr = static_cast<float>(c.optimizer.lr);
  o.momentum = static_cast<float>(c.optimizer.momentum);
  o.dampening = static_cast<float>(c.optimizer.dampening);
  o.nesterov = c.optimizer.nesterov;
  o.weight_decay = static_cast<float>(c.optimizer.weight_decay);
  o.beta1 = static_cast<float>(c.optimizer.beta1);
  o.beta2 = static_cast<float>(c.optimizer.beta2);
  o.eps = static_cast<float>(c.optimizer.eps);
  return o;
}

LrScheduleOptions lr_schedule_options(const Config& c) {
  LrScheduleOptions o;
  o.type = c.lr_schedule.type;
  o.warmup_epochs = c.lr_schedule.warmup_epochs;
  o.step_size = c.lr_schedule.step_size;
  o.gamma = static_cast<float>(c.lr_schedule.gamma);
  o.min_lr = static_cast<float>(c.lr_schedule.min_lr);
  return o;
}

int apply_process_settings(const Config& c) {
  if (c.device == Device::cuda) {
    cuda::require_device("this run (config key \"device\", or --device)");
    if (c.sparse.impl == SparseImpl::cusparse && !cuda::cusparse::available())
      throw Error(cuda::device_info().emulated
                      ? std::string("sparse.impl = \"cusparse\" needs a real GPU, but the device is "
                                    "the CPU emulator (it runs only sparsetrain's own kernels); "
                                    "use \"native\"")
                      : "sparse.impl = \"cusparse\": " + cuda::cusparse::load_error() +
                            "; install the CUDA toolkit's cuSPARSE or use \"native\"");
  }
  const int threads = c.threads > 0 ? c.threads : omp_get_num_procs();
  omp_set_num_threads(threads);
  set_dense_backend(c.backend);
  set_sparse_impl(c.sparse.impl);
  return threads;
}

data::Dataset sample_shape(const Config& c) {
  data::Dataset d;
  d.name = to_string(c.data.dataset);
  if (c.data.dataset == DatasetKind::synthetic) {
    d.channels = c.data.synthetic.channels;
    d.height = c.data.synthetic.height;
    d.width = c.data.synthetic.width;
    d.num_classes = c.data.synthetic.classes;
  } else {
    d.channels = 1, d.height = 28, d.width = 28, d.num_classes = 10;
  }
  return d;
}

double csr_threshold(const Config& c, bool* timed) {
  const bool gpu = c.device == Device::cuda;
  *timed = gpu ? c.sparse.auto_threshold_cuda : c.sparse.auto_threshold;
  return gpu ? c.sparse.threshold_cuda : c.sparse.threshold;
}

}  // namespace st::experiment
