#include "models/builder.h"

#include <cmath>
#include <map>

namespace st::models {

LayerSpec layer_spec(LayerType type, int out, int k, int pad) {
  LayerSpec l;
  l.type = type;
  l.out = out;
  l.kernel_h = l.kernel_w = k;
  l.pad_h = l.pad_w = pad;
  return l;
}

namespace {

LayerSpec dropout_layer(float p) {
  LayerSpec l = layer_spec(LayerType::dropout);
  l.p = p;
  return l;
}

// The stem of a layer's default name: fc1, conv1, pool1, relu1, dropout1, flatten1.
const char* name_prefix(LayerType type) {
  switch (type) {
    case LayerType::linear: return "fc";
    case LayerType::conv2d: return "conv";
    case LayerType::maxpool2d:
    case LayerType::avgpool2d: return "pool";
    case LayerType::relu: return "relu";
    case LayerType::dropout: return "dropout";
    case LayerType::flatten: return "flatten";
  }
  return "layer";
}

std::string default_name(LayerType type, std::map<std::string, int>& counts) {
  const std::string prefix = name_prefix(type);
  return prefix + std::to_string(++counts[prefix]);
}

}  // namespace

std::vector<LayerSpec> architecture_layers(const ModelSpec& spec, int num_classes) {
  std::vector<LayerSpec> L;
  auto classifier = [&](std::vector<int> hidden) {
    for (int h : hidden) {
      L.push_back(layer_spec(LayerType::linear, h));
      L.push_back(layer_spec(LayerType::relu));
    }
    if (spec.dropout > 0.f) L.push_back(dropout_layer(spec.dropout));
    L.push_back(layer_spec(LayerType::linear, num_classes));
  };
  if (spec.arch == Arch::layers) return spec.layers;
  if (spec.arch == Arch::mlp || spec.arch == Arch::lenet300) {
    L.push_back(layer_spec(LayerType::flatten));
    classifier(spec.arch == Arch::mlp ? spec.hidden : std::vector<int>{300, 100});
  } else if (spec.arch == Arch::lenet5) {
    // Caffe's LeNet-5 (as in Han et al. 2015): no nonlinearity after the convolutions.
    L.push_back(layer_spec(LayerType::conv2d, 20, 5));
    L.push_back(layer_spec(LayerType::maxpool2d, 0, 2));
    L.push_back(layer_spec(LayerType::conv2d, 50, 5));
    L.push_back(layer_spec(LayerType::maxpool2d, 0, 2));
    L.push_back(layer_spec(LayerType::flatten));
    classifier({500});
  } else if (spec.arch == Arch::simplecnn) {
    L.push_back(layer_spec(LayerType::conv2d, 32, 3, 1));
    L.push_back(layer_spec(LayerType::relu));
    L.push_back(layer_spec(LayerType::maxpool2d, 0, 2));
    L.push_back(layer_spec(LayerType::conv2d, 64, 3, 1));
    L.push_back(layer_spec(LayerType::relu));
    L.push_back(layer_spec(LayerType::maxpool2d, 0, 2));
    L.push_back(layer_spec(LayerType::flatten));
    classifier({128});
  } else {
    throw Error("model.arch: not an Arch (" + std::to_string(static_cast<int>(spec.arch)) + ")");
  }
  return L;
}

std::unique_ptr<Model> build_model(const ModelSpec& spec, const Shape& input_shape, int num_classes,
                                   uint64_t seed, bool allocate) {
  auto model = std::make_unique<Model>(input_shape, seed);
  std::map<std::string, int> counts;
  const std::vector<LayerSpec> specs = architecture_layers(spec, num_classes);
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& l = specs[i];
    const std::string name = l.name.empty() ? default_name(l.type, counts) : l.name;
    const Shape in = model->output_shape();
    std::unique_ptr<Module> m;
    if (l.type == LayerType::linear) {
      ST_CHECK(in.size() == 1, "model layer ", i, " (", name, "): linear needs flat inputs, gets ",
               shape_str(in), " (add a flatten layer before it)");
      m = std::make_unique<Linear>(name, static_cast<int>(in[0]), l.out, l.bias, allocate);
    } else if (l.type == LayerType::conv2d) {
      ST_CHECK(in.size() == 3, "model layer ", i, " (", name, "): conv2d needs (C, H, W) inputs, gets ",
               shape_str(in));
      Conv2dOptions o{l.stride_h ? l.stride_h : 1, l.stride_w ? l.stride_w : 1, l.pad_h, l.pad_w};
      m = std::make_unique<Conv2d>(name, static_cast<int>(in[0]), l.out, l.kernel_h, l.kernel_w, o,
                                   l.bias, allocate);
    } else if (l.type == LayerType::maxpool2d || l.type == LayerType::avgpool2d) {
      Pool2dOptions o{l.kernel_h, l.kernel_w, l.stride_h ? l.stride_h : l.kernel_h,
                      l.stride_w ? l.stride_w : l.kernel_w, l.pad_h, l.pad_w};
      m = std::make_unique<Pool2d>(name, l.type == LayerType::maxpool2d ? Pool2d::Kind::max : Pool2d::Kind::avg,
                                   o);
    } else if (l.type == LayerType::relu) {
      m = std::make_unique<ReLU>(name);
    } else if (l.type == LayerType::dropout) {
      m = std::make_unique<Dropout>(name, l.p, &model->dropout_rng());
    } else if (l.type == LayerType::flatten) {
      m = std::make_unique<Flatten>(name);
    } else {
      throw Error("model layer " + std::to_string(i) + ": not a LayerType (" +
                  std::to_string(static_cast<int>(l.type)) + ")");
    }
    model->add(std::move(m));
  }
  const Shape out = model->output_shape();
  ST_CHECK(out.size() == 1 && out[0] == num_classes, "model: the network outputs per-sample shape ",
           shape_str(out), " but the dataset has ", num_classes, " classes (the last layer must be ",
           "linear with ", num_classes, " outputs)");
  if (!allocate) return model;
  Rng rng(seed);
  initialize(*model, spec.init, rng);
  return model;
}

float init_draw(Init init, int64_t fan_in, int64_t fan_out, Rng& rng) {
  switch (init) {
    case Init::pytorch: {
      const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
      return rng.uniform(-bound, bound);
    }
    case Init::kaiming_uniform: {
      const float bound = std::sqrt(6.f / fan_in);
      return rng.uniform(-bound, bound);
    }
    case Init::kaiming_normal: return std::sqrt(2.f / fan_in) * rng.normal();
    case Init::glorot_uniform: {
      const float bound = std::sqrt(6.f / (fan_in + fan_out));
      return rng.uniform(-bound, bound);
    }
    case Init::glorot_normal: return std::sqrt(2.f / (fan_in + fan_out)) * rng.normal();
  }
  throw Error("model.init: not an Init (" + std::to_string(static_cast<int>(init)) + ")");
}

void initialize(Model& model, Init init, Rng& rng) {
  for (const auto& layer : model.layers()) {
    auto params = layer->parameters();
    if (params.empty() || params[0]->sparse()) continue;
    if (params[0]->unset()) params[0]->var.value() = Tensor::zeros(params[0]->shape);
    Tensor& w = params[0]->var.value();
    const int64_t fan_out = w.dim(0) * (w.numel() / (w.dim(0) * w.dim(1)));
    const int64_t fan_in = w.numel() / w.dim(0);
    float* wp = w.f32();
    const int64_t n = w.numel();
    for (int64_t i = 0; i < n; ++i) wp[i] = init_draw(init, fan_in, fan_out, rng);
    if (init == Init::pytorch) {
      // PyTorch's default bias: U(±1/√fan_in), like its kaiming_uniform(a=√5) weights.
      if (params.size() > 1) {
        const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
        Tensor& b = params[1]->var.value();
        for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = rng.uniform(-bound, bound);
      }
      continue;
    }
    if (params.size() > 1) params[1]->var.value().zero_();
  }
}

}  // namespace st::models
