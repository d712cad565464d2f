// yoloc: one binary with subcommands (inspect, generate, run, detect, bench, ...).
#include <clocale>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>

#include "commands.h"
#include "core/env.h"
#include "core/error.h"

namespace yoloc_cli {

std::vector<Command>& commands() {
    static std::vector<Command> c;
    return c;
}

void info(const std::string& msg) { std::fprintf(stderr, "%s\n", msg.c_str()); }
void warn(const std::string& msg) { std::fprintf(stderr, "warning: %s\n", msg.c_str()); }

}  // namespace yoloc_cli

int main(int argc, char** argv) {
    using namespace yoloc_cli;
    std::setlocale(LC_NUMERIC, "C");
    CLI::App app{"yoloc: prune, quantize, build and run YOLOv8 detectors for small NVIDIA GPUs"};
    app.set_version_flag("--version", std::string("yoloc ") + YOLOC_VERSION);
    app.require_subcommand(1);
    app.add_flag_callback(
        "--help-env",
        [] {
            std::fputs(yoloc::env_table_text().c_str(), stdout);
            throw CLI::Success();
        },
        "List the YOLOC_* environment variables yoloc reads, with their defaults, and exit");
    std::map<CLI::App*, Action> actions;
    std::vector<std::pair<CLI::App*, const Command*>> subs;
    for (const auto& c : commands()) subs.emplace_back(app.add_subcommand(c.name, c.help), &c);
    try {
        for (auto& s : subs) actions[s.first] = s.second->setup(*s.first);
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::Success& e) {  // --help-env
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "error: %s (see `yoloc --help`)\n", e.what());
        return 2;
    }
    try {
        for (auto& s : subs)
            if (s.first->parsed()) return actions[s.first]();
    } catch (const yoloc::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
