// pruning/l1.h — the L1 term any method can add: g += λ·sign(w) on every prunable weight, at each
// step of the epochs [l1.start_epoch, l1.end_epoch). The Pruner runs it before the method's step.
// Tests: tests/pruning/test_pruner.cpp ("pruner: the L1 term ...")
#pragma once
#include <vector>

#include "pruning/config.h"
#include "pruning/layers.h"
#include "pruning/method.h"

namespace st::pruning {

// The term's Action at a step of `epoch`; empty outside its epochs or when pruning.l1 is absent.
Action l1_term(const L1Config& l1, const std::vector<PrunableLayer>& layers, int epoch);

}  // namespace st::pruning
