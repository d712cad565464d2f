#include "option_rules.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>

#include "core/error.h"
#include "core/limits.h"

namespace yoloc_cli::rules {
namespace lim = yoloc::limits;

namespace {

// Parses all of `s` as a whole number; false for anything else (text, fractions, overflow).
bool parse_int(const std::string& s, int64_t* v) {
    if (s.empty()) return false;
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(s.c_str(), &end, 10);
    if (errno != 0 || end != s.c_str() + s.size()) return false;
    *v = int64_t(x);
    return true;
}

bool parse_number(const std::string& s, double* v) {
    if (s.empty()) return false;
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(x)) return false;
    *v = x;
    return true;
}

CLI::Validator whole_number(const std::string& desc, std::function<std::string(int64_t)> rule) {
    return CLI::Validator(
        [rule](std::string& s) {
            int64_t v = 0;
            if (!parse_int(s, &v)) return "expected a whole number, got '" + s + "'";
            return rule(v);
        },
        desc);
}

CLI::Validator number(const std::string& desc, std::function<std::string(double)> rule) {
    return CLI::Validator(
        [rule](std::string& s) {
            double v = 0;
            if (!parse_number(s, &v)) return "expected a number, got '" + s + "'";
            return rule(v);
        },
        desc);
}

// The rule, with 0 also allowed (meaning: what the model declares).
std::function<std::string(int64_t)> or_zero(std::string (*rule)(int64_t)) {
    return [rule](int64_t v) {
        std::string why = v == 0 ? std::string() : rule(v);
        return why.empty() ? why : why + " (or 0: the model's)";
    };
}

}  // namespace

CLI::Validator threads() {
    return whole_number(yoloc::cat("0 (all cores) or 1..", lim::max_threads()), lim::threads_problem);
}

CLI::Validator batch(bool zero_is_model) {
    if (!zero_is_model) return whole_number(yoloc::cat("1..", lim::kMaxBatch), lim::batch_problem);
    return whole_number(yoloc::cat("0 (the model's) or 1..", lim::kMaxBatch), or_zero(lim::batch_problem));
}

CLI::Validator imgsz(bool zero_is_model) {
    const std::string range = yoloc::cat("multiple of ", lim::kImgszStep, " in ", lim::kImgszStep, "..", lim::kMaxImgsz);
    if (!zero_is_model) return whole_number(range, lim::imgsz_problem);
    return whole_number("0 (the model's) or " + range, or_zero(lim::imgsz_problem));
}

CLI::Validator probability() { return number("in [0, 1]", lim::probability_problem); }

CLI::Validator ratio() { return number("in [0, 1)", lim::ratio_problem); }

CLI::Validator percent() { return number("in (0, 100]", lim::percent_problem); }

CLI::Validator at_least(int64_t min) {
    return whole_number(yoloc::cat(min, " or more"), [min](int64_t v) { return lim::at_least_problem(v, min); });
}

}  // namespace yoloc_cli::rules
