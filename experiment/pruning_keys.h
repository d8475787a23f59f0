// experiment/pruning_keys.h — the "pruning" block's rows of the config's key table
// (experiment/config_keys.cpp holds the rest): one row per key, with the block's presence and the
// method's schedule keys as conditions and the method's defaults (pruning/method.h).
// Tests: tests/experiment/test_config.cpp, tests/pruning/test_config.cpp
#pragma once
#include <array>

#include <nlohmann/json.hpp>

#include "experiment/config.h"
#include "experiment/key_table.h"
#include "pruning/config.h"

namespace st::experiment {

// Appends the rows of the pruning block to `table`, in the order they are read: the block's
// defaults and ranges depend on train.epochs, so they come after it.
void add_pruning_keys(KeyTable<Config>& table);

// The rules over several pruning keys (pruning::check_pruning_config), as ConfigError.
void check_pruning_rules(const Config& c);

// The pruning block `raw` of a run of train_epochs epochs, read by the key table's rows and rules
// (errors: ConfigError naming the key path): for tests of the pruning layer, which build their
// PruningConfig from JSON.
pruning::PruningConfig parse_pruning_config(const nlohmann::json& raw, int train_epochs);

// An [h, w] pair as a config writes it: one integer when both are equal.
nlohmann::json pair_to_json(const std::array<int, 2>& p);

}  // namespace st::experiment
