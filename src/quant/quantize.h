// Static post-training quantization to TensorRT's explicit-quantization form:
//  - QuantizeLinear/DequantizeLinear only, int8, zero points 0 (symmetric);
//  - Conv weights: int8 initializer + DequantizeLinear, per output channel (axis 0,
//    range [-127, 127], scale = max|w| / 127) or per tensor;
//  - activations: per-tensor Q -> DQ on the input of every Conv, and on the
//    residual input of a residual Add only (so TensorRT can fuse the Add into the
//    Conv that produces the other input);
//  - same graph inputs/outputs, opset kept (>= 13).
// Also the TensorRT calibration cache text and a per-layer report.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/calibrate.h"

namespace yoloc {

struct QuantizeOptions {
    // Percentile 99.99 by default: TensorRT's entropy algorithm clips YOLOv8's SiLU
    // activations hard (e.g. 7% of values) and loses 2.3-6.4 mAP50-95 points on val64
    // (docs/QUANTIZATION.md, accuracy table).
    CalibMethod method = CalibMethod::Percentile;
    double percentile = 99.99;
    bool per_channel = true;             // weights; false = one scale per Conv weight
    std::vector<std::string> exclude;    // Conv/Add node names left in float
    // The DFL conv (fixed 0..reg_max-1 weights: the box decode's expectation) stays
    // float unless asked: quantizing its softmax input costs ~0.8 mAP50-95 points on
    // yolov8n (docs/QUANTIZATION.md) and it is decode, not a learned layer.
    bool quantize_dfl = false;
    // Leave the N most sensitive layers in float (no Q/DQ). 2 by default: on yolov8n
    // this brings the loss from ~1.5 to ~0 mAP50-95 points (docs/QUANTIZATION.md).
    int keep_fp = 2;
    bool sensitivity = false;            // measure one-layer-at-a-time sensitivity
    int sensitivity_images = 4;          // calibration images used for sensitivity
    int report_images = 2;               // calibration images used for per-layer SQNR
    int threads = 0;
    int trt_version = 8205;
    // One scale for every tensor a Concat joins (its inputs and output, through
    // nearest Resizes and MaxPools, which commute with quantization): the rule NVIDIA's
    // YOLO QAT scripts apply (concat inputs take the concat's quantizer) so that TensorRT
    // needs no re-quantization at a Concat, and what lets `yoloc build` keep such
    // tensors in int8 between layers (docs/QUANTIZATION.md, "Shared concat scales").
    bool share_concat_scales = true;
};

// What gets quantized: Conv nodes (input activation + weight) and residual Adds
// (their residual input).
struct QuantLayer {
    std::string node;      // Conv or Add node name
    std::string op;        // "Conv" | "Add"
    std::string input;     // activation value that gets Q/DQ
    std::string output;    // layer output for the report (Conv+SiLU unit output for Conv)
};
struct QuantPlan {
    std::vector<QuantLayer> layers;
};

// All Convs with a float 4-D initializer weight and all residual Adds, minus `exclude`
// (unknown names in `exclude` are an error).
QuantPlan plan_quantization(const Model& model, const std::vector<std::string>& exclude = {},
                            bool quantize_dfl = true);
// True for YOLOv8's DFL conv: weight [1, C, 1, 1] holding 0, 1, ..., C-1.
bool is_dfl_conv(const Graph& g, const Node& conv);

// Throws yoloc::Error when the model already holds quantization ops or int8 tensors.
void check_float_model(const Model& model);

// Inserts Q/DQ per `plan`: act_amax[value] gives the clipping range of each activation.
Model insert_qdq(const Model& model, const QuantPlan& plan, const std::map<std::string, double>& act_amax,
                 bool per_channel);

// `amax` with every value of a concat group set to the largest amax in its group. A
// group: the inputs and output of a Concat, joined with the input and output of each
// MaxPool and nearest Resize (quantization commutes with both), transitively. Values
// without an amax are left out; `groups` (optional) receives each group of >= 2 values.
std::map<std::string, double> share_concat_amax(const Model& model, const std::map<std::string, double>& amax,
                                                std::vector<std::vector<std::string>>* groups = nullptr);

// Every float32 activation of the model, in topological order: the graph input and
// every float output of a node computed (directly or not) from it, of any rank (so
// the 3-D Detect tail after its Reshapes/Concat/Split/Sigmoid, and output0, too).
// Not initializers, Constant outputs, or values computed only from them or from
// Shape/Size (fixed once the input shape is). These are the tensors calibrated and
// written to the TensorRT calibration cache: implicit INT8 wants a range for every
// layer boundary, and TensorRT decides itself which layers it runs in INT8.
std::vector<std::string> calibration_tensors(const Model& model);

// TensorRT calibration cache: "TRT-<ver>-EntropyCalibration2" (MinMaxCalibration for
// minmax) then "name: <hex of the float32 scale bits>" per tensor, scale = amax/127.
std::string calibration_cache(const std::map<std::string, double>& amax, int trt_version, CalibMethod m);
// float32 bits of `scale` as 8 lowercase hex digits.
std::string float_hex(float scale);

struct LayerReport {
    std::string node, op, input;
    double amax = 0, scale = 0;
    double clip_ratio = 0;        // fraction of calibration values with |x| > amax
    double weight_sqnr_db = 0;    // Conv only: weight vs its int8 reconstruction (inf = exact)
    double output_sqnr_db = 0;    // layer output of the Q/DQ model vs the float model
    double sensitivity_db = 0;    // output0 SQNR with only this layer quantized (when measured)
    bool sensitivity_measured = false;
    bool kept_fp = false;
};

struct QuantizeResult {
    Model model;
    std::vector<LayerReport> layers;
    std::map<std::string, double> cache_amax;   // every calibrated activation
    std::string cache_text;
    std::vector<std::string> kept_fp;           // layers left in float by --keep-fp
    double calib_seconds = 0, sensitivity_seconds = 0, report_seconds = 0;
    int calib_images = 0;
};

using QuantProgress = std::function<void(const std::string& stage, int done, int total)>;

// Calibrates on `images` and returns the Q/DQ model with its report and cache.
QuantizeResult quantize_model(const Model& model, const std::vector<std::string>& images, const QuantizeOptions& opt,
                              const QuantProgress& progress = {});

// SQNR in dB of `approx` against `ref` (same shape); +inf when identical.
double sqnr_db(const Tensor& ref, const Tensor& approx);

}  // namespace yoloc
