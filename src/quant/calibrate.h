// Calibration: per-tensor statistics of activations over calibration images, and
// the choice of a clipping range (amax) from them. Symmetric INT8 everywhere, so
// only |x| matters: scale = amax / 127.
//
// The histogram is TensorRT's: 2048 bins of |x| over [0, max |x|] (max taken over
// all calibration images in a first pass, so the bins never have to be re-binned).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

constexpr int kCalibBins = 2048;

struct TensorStats {
    double amax = 0;             // max |x| over all calibration data
    std::vector<double> hist;    // kCalibBins counts of |x| over [0, amax]; empty until pass 2
    double count = 0;            // values seen
    double bin_width() const { return amax / double(kCalibBins); }
};

enum class CalibMethod { Entropy, Percentile, Mse, MinMax };

// "entropy" | "percentile" | "mse" | "minmax"; throws yoloc::Error otherwise.
CalibMethod parse_calib_method(const std::string& s);

// TensorRT's EntropyCalibration2 (as reproduced by NVIDIA's pytorch-quantization,
// _compute_amax_entropy, start bin 128, stride 1): the clipping threshold whose
// 128-level quantized distribution has the least KL divergence from the reference.
// Returns amax (an upper bin edge).
double amax_entropy(const std::vector<double>& hist, double bin_width);
// Smallest upper bin edge below which at least `percentile` % of the values lie.
double amax_percentile(const std::vector<double>& hist, double bin_width, double percentile);
// Bin-centre amax (from bin 128 on) minimising the histogram-weighted MSE of
// symmetric 8-bit fake quantization (pytorch-quantization's _compute_amax_mse).
double amax_mse(const std::vector<double>& hist, double bin_width);
double choose_amax(const TensorStats& st, CalibMethod m, double percentile);
// Fraction of the calibration values with |x| > amax (clipped by quantization).
double clipping_ratio(const TensorStats& st, double amax);

// Calibration images: every JPEG/PNG in a folder or below it (sorted by path), or the lines of
// a .txt list (relative paths are relative to the list). `count` > 0 takes the
// first `count` and fails when there are fewer. Throws on an empty/unreadable source.
std::vector<std::string> calibration_images(const std::string& dir_or_list, int count);

using CalibProgress = std::function<void(int done, int total)>;

// Runs `images` (letterboxed like detect, the model's input size) through the model
// and collects stats of `values` (activation names). Two passes: max, then histograms.
// Uses the fast executor on a copy of the model with `values` as extra outputs; falls
// back to the reference executor when the fast one cannot run that copy.
std::map<std::string, TensorStats> collect_stats(const Model& model, const std::vector<std::string>& values,
                                                 const std::vector<std::string>& images, int threads = 0,
                                                 const CalibProgress& progress = {});

// Adds `values` as extra graph outputs (float32, shape unknown) of a copy of `m`.
Model with_extra_outputs(const Model& m, const std::vector<std::string>& values);

// The [1,3,S,S] input tensor of one image (S = the model's declared size, or 640).
int model_imgsz(const Model& m);

}  // namespace yoloc
