#include "models/builder.h"

#include <cmath>
#include <map>

namespace st::models {

LayerSpec layer_spec(const std::string& type, int out, int k, int pad) {
  LayerSpec l;
  l.type = type;
  l.out = out;
  l.kernel_h = l.kernel_w = k;
  l.pad_h = l.pad_w = pad;
  return l;
}

namespace {

LayerSpec dropout_layer(float p) {
  LayerSpec l = layer_spec("dropout");
  l.p = p;
  return l;
}

std::string default_name(const std::string& type, std::map<std::string, int>& counts) {
  std::string prefix = type == "linear" ? "fc" : type == "conv2d" ? "conv"
                       : (type == "maxpool2d" || type == "avgpool2d") ? "pool" : type;
  return prefix + std::to_string(++counts[prefix]);
}

}  // namespace

std::vector<LayerSpec> architecture_layers(const ModelSpec& spec, int num_classes) {
  std::vector<LayerSpec> L;
  auto classifier = [&](std::vector<int> hidden) {
    for (int h : hidden) {
      L.push_back(layer_spec("linear", h));
      L.push_back(layer_spec("relu"));
    }
    if (spec.dropout > 0.f) L.push_back(dropout_layer(spec.dropout));
    L.push_back(layer_spec("linear", num_classes));
  };
  if (spec.arch == "layers") return spec.layers;
  if (spec.arch == "mlp" || spec.arch == "lenet300") {
    L.push_back(layer_spec("flatten"));
    classifier(spec.arch == "mlp" ? spec.hidden : std::vector<int>{300, 100});
  } else if (spec.arch == "lenet5") {
    // Caffe's LeNet-5 (as in Han et al. 2015): no nonlinearity after the convolutions.
    L.push_back(layer_spec("conv2d", 20, 5));
    L.push_back(layer_spec("maxpool2d", 0, 2));
    L.push_back(layer_spec("conv2d", 50, 5));
    L.push_back(layer_spec("maxpool2d", 0, 2));
    L.push_back(layer_spec("flatten"));
    classifier({500});
  } else if (spec.arch == "simplecnn") {
    L.push_back(layer_spec("conv2d", 32, 3, 1));
    L.push_back(layer_spec("relu"));
    L.push_back(layer_spec("maxpool2d", 0, 2));
    L.push_back(layer_spec("conv2d", 64, 3, 1));
    L.push_back(layer_spec("relu"));
    L.push_back(layer_spec("maxpool2d", 0, 2));
    L.push_back(layer_spec("flatten"));
    classifier({128});
  } else {
    throw Error("model.arch: expected mlp, lenet300, lenet5, simplecnn or layers, got \"" +
                spec.arch + "\"");
  }
  return L;
}

std::unique_ptr<Model> build_model(const ModelSpec& spec, const Shape& input_shape, int num_classes,
                                   uint64_t seed) {
  auto model = std::make_unique<Model>(input_shape, seed);
  std::map<std::string, int> counts;
  const std::vector<LayerSpec> specs = architecture_layers(spec, num_classes);
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& l = specs[i];
    const std::string name = l.name.empty() ? default_name(l.type, counts) : l.name;
    const Shape in = model->output_shape();
    std::unique_ptr<Module> m;
    if (l.type == "linear") {
      ST_CHECK(in.size() == 1, "model layer ", i, " (", name, "): linear needs flat inputs, gets ",
               shape_str(in), " (add a flatten layer before it)");
      m = std::make_unique<Linear>(name, static_cast<int>(in[0]), l.out, l.bias);
    } else if (l.type == "conv2d") {
      ST_CHECK(in.size() == 3, "model layer ", i, " (", name, "): conv2d needs (C, H, W) inputs, gets ",
               shape_str(in));
      Conv2dOptions o{l.stride_h ? l.stride_h : 1, l.stride_w ? l.stride_w : 1, l.pad_h, l.pad_w};
      m = std::make_unique<Conv2d>(name, static_cast<int>(in[0]), l.out, l.kernel_h, l.kernel_w, o,
                                   l.bias);
    } else if (l.type == "maxpool2d" || l.type == "avgpool2d") {
      Pool2dOptions o{l.kernel_h, l.kernel_w, l.stride_h ? l.stride_h : l.kernel_h,
                      l.stride_w ? l.stride_w : l.kernel_w, l.pad_h, l.pad_w};
      m = std::make_unique<Pool2d>(name, l.type == "maxpool2d" ? Pool2d::Kind::max : Pool2d::Kind::avg,
                                   o);
    } else if (l.type == "relu") {
      m = std::make_unique<ReLU>(name);
    } else if (l.type == "dropout") {
      m = std::make_unique<Dropout>(name, l.p, &model->dropout_rng());
    } else if (l.type == "flatten") {
      m = std::make_unique<Flatten>(name);
    } else {
      throw Error("model layer " + std::to_string(i) + ": unknown type \"" + l.type + "\"");
    }
    model->add(std::move(m));
  }
  const Shape out = model->output_shape();
  ST_CHECK(out.size() == 1 && out[0] == num_classes, "model: the network outputs per-sample shape ",
           shape_str(out), " but the dataset has ", num_classes, " classes (the last layer must be ",
           "linear with ", num_classes, " outputs)");
  Rng rng(seed);
  initialize(*model, spec.init, rng);
  return model;
}

void initialize(Model& model, const std::string& init, Rng& rng) {
  for (const auto& layer : model.layers()) {
    auto params = layer->parameters();
    if (params.empty()) continue;
    Tensor& w = params[0]->var.value();
    const int64_t fan_out = w.dim(0) * (w.numel() / (w.dim(0) * w.dim(1)));
    const int64_t fan_in = w.numel() / w.dim(0);
    float* wp = w.f32();
    const int64_t n = w.numel();
    if (init == "pytorch") {
      // PyTorch's default: kaiming_uniform(a=√5) = U(±1/√fan_in), bias U(±1/√fan_in).
      const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
      for (int64_t i = 0; i < n; ++i) wp[i] = rng.uniform(-bound, bound);
      if (params.size() > 1) {
        Tensor& b = params[1]->var.value();
        for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = rng.uniform(-bound, bound);
      }
      continue;
    }
    if (init == "kaiming_uniform") {
      const float bound = std::sqrt(6.f / fan_in);
      for (int64_t i = 0; i < n; ++i) wp[i] = rng.uniform(-bound, bound);
    } else if (init == "kaiming_normal") {
      const float std = std::sqrt(2.f / fan_in);
      for (int64_t i = 0; i < n; ++i) wp[i] = std * rng.normal();
    } else if (init == "glorot_uniform") {
      const float bound = std::sqrt(6.f / (fan_in + fan_out));
      for (int64_t i = 0; i < n; ++i) wp[i] = rng.uniform(-bound, bound);
    } else if (init == "glorot_normal") {
      const float std = std::sqrt(2.f / (fan_in + fan_out));
      for (int64_t i = 0; i < n; ++i) wp[i] = std * rng.normal();
    } else {
      throw Error("model.init: expected pytorch, kaiming_uniform, kaiming_normal, glorot_uniform or "
                  "glorot_normal, got \"" + init + "\"");
    }
    if (params.size() > 1) params[1]->var.value().zero_();
  }
}

}  // namespace st::models
