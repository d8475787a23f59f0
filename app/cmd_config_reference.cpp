// app/cmd_config_reference.cpp — `sparsetrain config-reference`: every config key, its type,
// default, allowed values and help, printed as Markdown from the key table (docs/config.md is
// this output).
#include <cstdio>

#include "app/cli.h"
#include "experiment/config.h"

namespace st::app {

Command add_config_reference(CLI::App& app) {
  auto* cmd = app.add_subcommand("config-reference",
                                 "Print every config key (docs/config.md) from the key table");
  return {cmd, [] {
            std::fputs(experiment::config_reference().c_str(), stdout);
            return 0;
          }};
}

}  // namespace st::app
