// Validators for the numeric options the commands share. Each wraps one rule of
// core/limits.h, so every command refuses the same values with the same words (a
// usage error naming the flag, exit 2, before any work), and --help shows the range
// beside the option.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

namespace yoloc_cli::rules {

// --threads: 0 (all cores) or 1..limits::max_threads().
CLI::Validator threads();
// --batch: 1..limits::kMaxBatch; with zero_is_model also 0 (the model's batch).
CLI::Validator batch(bool zero_is_model = false);
// --imgsz: a multiple of 32 up to limits::kMaxImgsz; with zero_is_model also 0 (the
// model's size).
CLI::Validator imgsz(bool zero_is_model = false);
// Score and IoU thresholds: [0, 1].
CLI::Validator probability();
// Fractions of channels to remove: [0, 1).
CLI::Validator ratio();
// Whole numbers of at least `min` (counts: --max-det, --iters, --calib-count, ...).
CLI::Validator at_least(int64_t min);
// Percentages in (0, 100].
CLI::Validator percent();

}  // namespace yoloc_cli::rules
