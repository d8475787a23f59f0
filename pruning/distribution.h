// pruning/distribution.h — how a sparsity target spreads over layers:
//   layerwise / uniform  every eligible layer gets the target (uniform keeps first and last dense by default)
//   global               one cut over all eligible layers' scores (pruning/granularity.h select_global)
//   erk / er             Erdős–Rényi(-Kernel) densities (Evci et al. 2020, RigL): density_l ∝
//                        (Σ dims / Π dims)^power, scaled so that the eligible weights reach the target;
//                        layers whose density would exceed 1 become dense and the rest are rescaled.
//                        er uses (out + in) / (out · in), erk adds KH + KW for convolutions.
// Layers kept dense (keep_dense) get density 1; for erk/er their weights count toward the total, so
// the whole model reaches the target. Tests: tests/pruning/test_parts.cpp
#pragma once
#include <vector>

#include "pruning/config.h"
#include "pruning/layers.h"

namespace st::pruning {

// shapes: each layer's weight shape (OUT, IN[, KH, KW]); dense: layers forced dense.
// Returns per-layer densities in (0, 1].
std::vector<double> erk_densities(const std::vector<Shape>& shapes, const std::vector<bool>& dense,
                                  double target_sparsity, double power, bool with_kernel);

// Per-layer sparsity targets for the distributions that give them (not global).
std::vector<double> layer_sparsities(DistributionType type, const std::vector<PrunableLayer>& layers,
                                     const std::vector<bool>& eligible, double target, double erk_power);

}  // namespace st::pruning
