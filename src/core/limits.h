// Limits on the numbers users give (flags) and files declare (graph input sizes),
// checked in one place before anything is allocated from them. Each rule returns why
// a value is refused ("" when it is fine), so that the CLI's option validators and the
// library's own checks refuse the same values with the same words. docs/RELIABILITY.md
// lists every limit and why it is what it is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yoloc::limits {

// Largest square input size (--imgsz, or a model's declared H and W). Measured with
// `yoloc inspect`: YOLOv8n at 4096 takes 192 MiB of float32 input and 768 MiB of
// activations at peak; from about 6144 on, an 80-class head's tensors exceed the
// 2^26-element bound of shape inference, so a larger limit would only accept sizes
// that fail later with an error naming a node instead of the flag.
constexpr int64_t kMaxImgsz = 4096;
// Sizes are multiples of the largest YOLOv8 stride.
constexpr int64_t kImgszStep = 32;
// Largest --batch (the same bound `build` has).
constexpr int64_t kMaxBatch = 4096;
// Largest float32 input tensor of one forward pass (batch x 3 x H x W x 4 bytes):
// 2 GiB holds 10 images at 4096 or 436 at 640. YOLOv8's activations take about 4
// times its input, so this also keeps a run's activations to a few GiB.
constexpr int64_t kMaxInputBytes = int64_t(2) << 30;
// --threads above this many per hardware thread is refused: oversubscribing further
// only slows a run down, and 20,000 threads hung the executor, 100,000 crashed it.
constexpr int kThreadsPerHardwareThread = 4;

// Hardware threads of this machine (at least 1).
int hardware_threads();
// The largest --threads: kThreadsPerHardwareThread x hardware_threads().
int max_threads();

// Each returns "" when the value is fine, else why not (the caller names the flag).
std::string threads_problem(int64_t threads);   // 0 (all cores) or 1..max_threads()
std::string batch_problem(int64_t batch);       // 1..kMaxBatch
std::string imgsz_problem(int64_t imgsz);       // a multiple of 32 in 32..kMaxImgsz
std::string probability_problem(double v);      // [0, 1]: score and IoU thresholds
std::string ratio_problem(double v);            // [0, 1): fractions of channels to remove
std::string percent_problem(double v);          // (0, 100]: percentiles
std::string at_least_problem(int64_t v, int64_t min);  // counts (--max-det, --iters, ...)

// Bytes of a float32 tensor of `dims`, saturating at INT64_MAX instead of overflowing;
// -1 when a dim is negative (unknown).
int64_t float32_bytes(const std::vector<int64_t>& dims);
// "" when a float32 input of `dims` fits kMaxInputBytes, else why not, with the bytes.
std::string input_problem(const std::vector<int64_t>& dims);

// "1.50 GiB", "12.00 MiB", "512 bytes".
std::string byte_text(int64_t bytes);
// [1,3,640,640]
std::string dims_text(const std::vector<int64_t>& dims);

// Throws yoloc::Error "WHAT: PROBLEM" when `problem` is not empty.
void check(const std::string& what, const std::string& problem);

}  // namespace yoloc::limits
