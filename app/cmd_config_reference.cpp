// app/cmd_config_reference.cpp — `sparsetrain config-reference`: every config key, then every sweep
// file key, with type, default, allowed values and help, printed as Markdown from the key tables
// (docs/config.md is this output).
#include <cstdio>

#include "app/cli.h"
#include "experiment/config.h"
#include "experiment/sweep.h"

namespace st::app {

Command add_config_reference(CLI::App& app) {
  auto* cmd = app.add_subcommand("config-reference",
                                 "Print every config and sweep file key (docs/config.md) from the key tables");
  return {cmd, [] {
            std::fputs(experiment::config_reference().c_str(), stdout);
            std::fputs(experiment::sweep_reference().c_str(), stdout);
            return 0;
          }};
}

}  // namespace st::app
