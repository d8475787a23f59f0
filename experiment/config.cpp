// experiment/config.cpp — loading a config file (JSON + overrides) and the one-line description.
// The keys themselves (validation, defaults, overrides, to_json, the reference) are the rows of
// experiment/config_keys.cpp.
#include "experiment/config.h"
#include "experiment/json_errors.h"

#include <sstream>

namespace st::experiment {

using nlohmann::json;

bool operator==(const Config& a, const Config& b) { return to_json(a) == to_json(b); }

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string prefix = path + ": ";
  json raw = parse_user_json(read_user_file(path, "config file (JSON)"), path);
  for (const auto& o : overrides) {
    try {
      apply_override(raw, o);
    } catch (const ConfigError& e) {
      throw ConfigError(prefix + e.what());
    }
  }
  return parse_config(raw, path);
}

// ---------------------------------------------------------------------------------------------

std::string describe(const Config& c) {
  std::ostringstream s;
  s << c.name << ": " << to_string(c.model.arch);
  if (c.model.arch == Arch::mlp) {
    s << "[";
    for (size_t i = 0; i < c.model.hidden.size(); ++i) s << (i ? "," : "") << c.model.hidden[i];
    s << "]";
  } else if (c.model.arch == Arch::layers) {
    s << "(" << c.model.layers.size() << " layers)";
  }
  if (c.model.dropout > 0) s << " dropout=" << number_text(c.model.dropout);
  s << " on " << to_string(c.data.dataset);
  if (c.data.validation > 0) s << " (val " << c.data.validation << ")";
  const auto& o = c.optimizer;
  s << " | " << to_string(o.type) << " lr=" << number_text(o.lr);
  if (o.type == OptimizerType::sgd) {
    s << " momentum=" << number_text(o.momentum);
    if (o.nesterov) s << " nesterov";
  }
  if (o.weight_decay > 0) s << " wd=" << number_text(o.weight_decay);
  s << " | " << to_string(c.lr_schedule.type) << " lr";
  if (c.lr_schedule.warmup_epochs > 0) s << " +" << c.lr_schedule.warmup_epochs << " warmup";
  s << " | " << c.train.epochs << " epochs x batch " << c.train.batch_size;
  s << " | seed " << c.seed << " | " << to_string(c.device) << "/"
    << (c.device == Device::cuda ? to_string(c.sparse.impl) : to_string(c.backend));
  s << " threads " << (c.threads == 0 ? std::string("all") : std::to_string(c.threads));
  if (c.pruning) s << " | pruning";
  return s.str();
}

}  // namespace st::experiment
