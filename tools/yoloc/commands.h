// The CLI: one binary, one file per subcommand. Each command only parses its
// options and calls into libyoloc; what the user sees is decided here.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace yoloc_cli {

// A subcommand registers its options on `app` and returns the action to run.
using Action = std::function<int()>;
struct Command {
    const char* name;
    const char* help;
    std::function<Action(CLI::App&)> setup;
};

std::vector<Command>& commands();

struct Registrar {
    Registrar(const char* name, const char* help, std::function<Action(CLI::App&)> setup) {
        commands().push_back({name, help, std::move(setup)});
    }
};

// Messages go to stderr, results to stdout (so --json output stays clean).
void info(const std::string& msg);
void warn(const std::string& msg);

// The --calib-count to use with the calibration images of `calib`. The default is a
// cap, not a demand: with fewer images there, all of them are used (said in one info
// line). A count the user gave is a demand: refused when there are fewer images.
int calib_count_to_use(const std::string& calib, int count, bool given);

}  // namespace yoloc_cli
