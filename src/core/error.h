// One error type for the whole library. Library code throws yoloc::Error with
// enough context (file, node, what was expected, what to do); the CLI catches it
// and prints one `error: ...` line. Library code never prints.
#pragma once

#include <stdexcept>
#include <string>
#include <sstream>

namespace yoloc {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
    os << v;
    append(os, rest...);
}
}  // namespace detail

// Builds a message from pieces: fail("node ", name, ": expected 4-D input").
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
    std::ostringstream os;
    detail::append(os, args...);
    throw Error(os.str());
}

template <typename... Args>
std::string cat(const Args&... args) {
    std::ostringstream os;
    detail::append(os, args...);
    return os.str();
}

}  // namespace yoloc

// Checks an invariant that bad input can break; throws yoloc::Error.
#define YOLOC_CHECK(cond, ...)                 \
    do {                                       \
        if (!(cond)) ::yoloc::fail(__VA_ARGS__); \
    } while (0)
