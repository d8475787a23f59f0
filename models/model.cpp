#include "models/model.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/csr_weight.h"

namespace st::models {

Model::Model(Shape input_shape, uint64_t seed)
    : input_shape_(std::move(input_shape)), dropout_rng_(seed ^ 0xd1b54a32d192ed03ULL) {}

void Model::add(std::unique_ptr<Module> layer) {
  for (const auto& l : layers_)
    ST_CHECK(l->name() != layer->name(), "model: two layers are named \"", layer->name(), "\"");
  layer->output_shape(output_shape());  // shape-checks the new layer against what precedes it
  for (Parameter* p : layer->parameters()) params_.push_back(p);
  layers_.push_back(std::move(layer));
}

Shape Model::output_shape() const {
  Shape s = input_shape_;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

// How many layers from i form a CSR conv [+ relu] + non-overlapping max pool that runs as one cpu
// node (sparse_conv2d_pool: the same values and gradients without the NCHW conv output), 0 if the
// layers at i do not.
size_t Model::conv_pool_block(size_t i) const {
  auto* conv = i < layers_.size() ? dynamic_cast<Conv2d*>(layers_[i].get()) : nullptr;
  if (!conv || !conv->weight().sparse()) return 0;
  size_t j = i + 1;
  if (j < layers_.size() && dynamic_cast<ReLU*>(layers_[j].get()) != nullptr) ++j;
  auto* pool = j < layers_.size() ? dynamic_cast<Pool2d*>(layers_[j].get()) : nullptr;
  if (!pool || pool->kind() != Pool2d::Kind::max || !sparse_conv2d_pool_fits(pool->options()))
    return 0;
  return j - i + 1;
}

// Runs the fused conv + pool blocks from i, consecutive ones passing their activations batch
// innermost and already padded for the next conv (no NCHW, padding copy or crop between them);
// returns how many layers that covers, 0 if none.
size_t Model::fused_conv_pool(size_t i, Variable& h) {
  if (h.value().is_cuda()) return 0;
  size_t j = i, len = conv_pool_block(i);
  bool in_pn = false;
  while (len) {
    const size_t next = conv_pool_block(j + len);
    auto* conv = static_cast<Conv2d*>(layers_[j].get());
    const bool relu = dynamic_cast<ReLU*>(layers_[j + 1].get()) != nullptr;
    auto* pool = static_cast<Pool2d*>(layers_[j + len - 1].get());
    Parameter* b = conv->bias();
    // The next block's conv reads this block's output as its padded input, as it is written.
    const Conv2dOptions* to = next ? &static_cast<Conv2d*>(layers_[j + len].get())->options() : nullptr;
    h = sparse_conv2d_pool(h, conv->weight().csr, b ? b->var : Variable(), conv->options(), relu,
                           pool->options(), in_pn, next != 0, to ? to->pad_h : 0,
                           to ? to->pad_w : 0);
    in_pn = next != 0;
    j += len;
    len = next;
  }
  return j - i;
}

// A relu followed by a max pool runs as the pool and then the relu, on a quarter of the values
// with 2×2 windows: relu is monotone, so max(relu(window)) = relu(max(window)), and the gradient
// reaches the same element (a window whose maximum is not positive passes none either way).
// Returns 2 when it applies at i, else 0.
size_t Model::pool_before_relu(size_t i, Variable& h) {
  if (i + 1 >= layers_.size() || dynamic_cast<ReLU*>(layers_[i].get()) == nullptr) return 0;
  auto* pool = dynamic_cast<Pool2d*>(layers_[i + 1].get());
  if (!pool || pool->kind() != Pool2d::Kind::max) return 0;
  h = layers_[i]->forward(pool->forward(h));
  return 2;
}

// Two or more CSR Linear layers in a row on the cpu ([relu] after each) run feature-major when they
// are wide and each input feeds few outputs: h is transposed to (features, B) once, the layers run
// as sparse_linear_fm (and relu) in that layout, and the result is transposed back. There the CSR
// products gather the activations' rows directly; batch-major, each product packs its input
// transposed per 32 samples, a pass over the activations that costs more than the gathers when
// the layer is wide and has only a few nonzeros per input column. Returns how many layers from i
// that covers, 0 if none.
size_t Model::fused_sparse_linears(size_t i, Variable& h) {
  if (h.value().is_cuda() || h.value().ndim() != 2) return 0;
  size_t j = i;
  int links = 0, widest = 0;
  int64_t nnz = 0, cols = 0;
  while (j < layers_.size()) {
    auto* fc = dynamic_cast<Linear*>(layers_[j].get());
    if (!fc || !fc->weight().sparse()) break;
    nnz += fc->weight().csr->nnz();
    cols += fc->in_features();
    widest = std::max({widest, fc->in_features(), fc->out_features()});
    ++links;
    ++j;
    if (j < layers_.size() && dynamic_cast<ReLU*>(layers_[j].get()) != nullptr) ++j;
  }
  if (links < 2 || widest < feature_major_.min_width ||
      static_cast<double>(nnz) >= feature_major_.max_fan_out * static_cast<double>(cols))
    return 0;
  Variable t = transpose2d(h);
  for (size_t k = i; k < j; ++k) {
    if (auto* fc = dynamic_cast<Linear*>(layers_[k].get())) {
      Parameter* b = fc->bias();
      t = sparse_linear_fm(t, fc->weight().csr, b ? b->var : Variable());
    } else {
      t = relu(t);
    }
  }
  h = transpose2d(t);
  return j - i;
}

// A CSR Linear layer followed by a relu, on the cpu, runs as one node (sparse_linear with relu):
// the bias and the relu are applied as the SpMM stores its output (no separate passes over it),
// the same bits as the two layers. Returns 2 when it applies at i, else 0.
size_t Model::fused_sparse_linear_relu(size_t i, Variable& h) {
  if (i + 1 >= layers_.size() || h.value().is_cuda()) return 0;
  auto* fc = dynamic_cast<Linear*>(layers_[i].get());
  if (!fc || !fc->weight().sparse() || dynamic_cast<ReLU*>(layers_[i + 1].get()) == nullptr)
    return 0;
  Parameter* b = fc->bias();
  h = sparse_linear(h, fc->weight().csr, b ? b->var : Variable(), true);
  return 2;
}

Variable Model::forward(const Variable& x) {
  Variable h = x;
  for (size_t i = 0; i < layers_.size();) {
    size_t fused = fused_conv_pool(i, h);
    if (!fused) fused = fused_sparse_linears(i, h);
    if (!fused) fused = fused_sparse_linear_relu(i, h);
    if (!fused) fused = pool_before_relu(i, h);
    if (fused) {
      i += fused;
      continue;
    }
    h = layers_[i]->forward(h);
    ++i;
  }
  return h;
}

Variable Model::forward_collect(const Variable& x, std::vector<Tensor>& outputs) {
  outputs.clear();
  Variable h = x;
  for (const auto& l : layers_) {
    h = l->forward(h);
    outputs.push_back(h.value());
  }
  return h;
}

void Model::set_training(bool t) {
  for (const auto& l : layers_) l->set_training(t);
}

void Model::to(Device device) {
  for (Parameter* p : params_) {
    if (p->csr) {
      move_csr_weight(*p->csr, device);
      continue;
    }
    Variable& v = p->var;
    if (v.value().defined()) v.value() = v.value().to(device);
    if (v.has_grad()) v.grad() = v.grad().to(device);
  }
  device_ = device;
}

Parameter* Model::find_parameter(const std::string& name) const {
  for (Parameter* p : params_)
    if (p->name == name) return p;
  return nullptr;
}

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (Parameter* p : params_) n += p->numel();
  return n;
}

int64_t Model::macs_per_sample() const {
  int64_t n = 0;
  Shape s = input_shape_;
  for (const auto& l : layers_) {
    n += l->macs(s);
    s = l->output_shape(s);
  }
  return n;
}

std::string Model::summary() const {
  std::ostringstream os;
  Shape s = input_shape_;
  os << "input " << shape_str(s) << "\n";
  for (const auto& l : layers_) {
    s = l->output_shape(s);
    int64_t n = 0;
    for (Parameter* p : l->parameters()) n += p->numel();
    os << "  " << std::left << std::setw(40) << l->describe() << " -> " << std::setw(16)
       << shape_str(s);
    if (n) os << " " << n << " params";
    os << "\n";
  }
  os << "total " << num_parameters() << " parameters, " << macs_per_sample() << " MACs/sample";
  return os.str();
}

}  // namespace st::models
