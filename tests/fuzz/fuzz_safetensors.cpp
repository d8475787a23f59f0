// tests/fuzz/fuzz_safetensors.cpp — checkpoints: read_safetensors, then what `info` and `--resume`
// do with a file: read_checkpoint_info, parse_config of the stored config, and load_checkpoint
// (weights, CSR form, masks, Adam state, RNG words) into a small fixed model. The model is the one
// the corpus' checkpoints were trained with (tests/fuzz/make_corpus.sh): MLP [4] on 1×4×4 inputs,
// 3 classes, Adam — so mutated files reach the per-tensor checks, not only the shape mismatch.
#include <memory>

#include "core/optim.h"
#include "experiment/checkpoint.h"
#include "experiment/safetensors.h"
#include "fuzz_util.h"
#include "models/builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = st::fuzz::mem_file().write(data, size);
  st::fuzz::expect_clean_refusal([&] {
    st::experiment::read_safetensors(path);
    const st::experiment::CheckpointInfo info = st::experiment::read_checkpoint_info(path);
    st::experiment::parse_config(info.config, path + " (config)");
  });
  st::fuzz::expect_clean_refusal([&] {
    st::models::ModelSpec spec;
    spec.arch = st::models::Arch::mlp;
    spec.hidden = {4};
    auto model = st::models::build_model(spec, {1, 4, 4}, 3, 1);
    st::OptimizerOptions opt;
    opt.type = st::OptimizerType::adam;
    st::Optimizer optimizer(model->parameters(), opt);
    st::experiment::load_checkpoint(path, *model, &optimizer);
  });
  return 0;
}
