// Environment variables: every YOLOC_* variable yoloc reads, in one table with what it does,
// its default and the file that reads it. Readers call env_get(), which refuses a name the
// table lacks; `yoloc --help-env` prints the table and docs/ENVIRONMENT.md lists it
// (tests/test_env.cpp checks the docs, and that no source file reads a variable the table
// lacks). Kept C++14 for the CUDA sources.
#pragma once

#include <string>
#include <vector>

namespace yoloc {

struct EnvVar {
    const char* name;      // "YOLOC_NO_PROGRESS"
    const char* kind;      // "user", "experiment" (A/B runs of bench/), "diagnostic" or "test"
    const char* fallback;  // what happens when it is unset
    const char* effect;    // what setting it does
    const char* read_by;   // the source file that reads it
};

// Every variable, in the order of docs/ENVIRONMENT.md.
const std::vector<EnvVar>& env_table();

// The value of `name` (nullptr when unset). Throws yoloc::Error when `name` is not in the
// table: a reader that skipped it is a bug.
const char* env_get(const char* name);

// The table as aligned text (`yoloc --help-env`) and as the Markdown table of docs/ENVIRONMENT.md.
std::string env_table_text();
std::string env_table_markdown();

}  // namespace yoloc
