// A YOLO detector: model + executor + pre/post-processing in one object. This is
// what `detect`, `run`, `eval` and the public API use. Given an ONNX model it runs
// on the CPU; given a GPU engine file (`yoloc build`, *.engine) it runs the engine,
// and detect() does the letterbox, decode and NMS on the GPU too.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/cpu/executor.h"
#include "yolo/image.h"
#include "yolo/letterbox.h"
#include "yolo/postprocess.h"
#include "yolo/recognize.h"

namespace yoloc {

struct DetectorOptions {
    std::string backend = "fast";  // "fast" or "reference"
    int threads = 0;               // 0 = all cores; at most limits::max_threads() (core/limits.h)
    int imgsz = 0;                 // 0 = the model's own input size (640 when symbolic)
    int batch = 1;
    // The input [batch,3,imgsz,imgsz] is checked against core/limits.h (size, input
    // budget) before any tensor is allocated for it.
};

class GpuDetector;  // the engine side (yolo/detector.cpp), CUDA builds only

// True for paths that name a GPU engine file (*.engine).
bool is_engine_path(const std::string& path);

class Detector {
public:
    // An ONNX model, or a *.engine file (fails cleanly in a build without CUDA). Errors
    // about the model's input name the file.
    Detector(const std::string& model_path, const DetectorOptions& opts = {});
    Detector(const Model& model, const DetectorOptions& opts = {});
    ~Detector();

    // Another detector on the same model for another thread: a new executor on the
    // same graph, or a new execution context on the same engine (weights shared).
    std::unique_ptr<Detector> clone() const;

    // The recognised task (detect, segment, pose): detect() and eval take detection models.
    Task task() const { return task_; }
    // Fails, naming the task, unless this is a detection model.
    void require_detection(const std::string& what) const;
    // The output is an end-to-end head's [N, K, 6] (top-k inside the model, no NMS).
    bool end2end() const { return end2end_; }

    int imgsz() const { return imgsz_; }
    int batch() const { return batch_; }
    int num_classes() const { return nc_; }
    const std::vector<std::string>& names() const { return names_; }
    const Model& model() const { return model_; }
    const std::string& input_name() const { return input_name_; }
    const std::string& output_name() const { return output_name_; }

    // Raw output0 for an already preprocessed [batch,3,S,S] tensor.
    Tensor infer(const Tensor& images);
    // Letterbox + infer + decode + NMS for one image.
    std::vector<Detection> detect(const Image& img, const PostprocessOptions& opt, Tensor* raw = nullptr);

private:
    Detector() = default;
    void init(const DetectorOptions& opts);
    void init_engine(const std::string& path);
    DetectorOptions opts_;
    std::string source_ = "the model";  // what errors about the input call the model
    std::shared_ptr<GpuDetector> gpu_;
    Model model_;
    std::unique_ptr<Executor> exec_;
    int imgsz_ = 640, batch_ = 1, nc_ = 0;
    Task task_ = Task::Detect;
    bool end2end_ = false;
    std::vector<std::string> names_;
    std::string input_name_, output_name_;
};

// Class names stored by Ultralytics in the model's metadata ("names":
// "{0: 'person', 1: 'bicycle', ...}"); empty when absent.
std::vector<std::string> names_from_metadata(const Model& model);
// Names from a text file: one per line, or a data.yaml `names:` map/list.
std::vector<std::string> load_names_file(const std::string& path);

}  // namespace yoloc
