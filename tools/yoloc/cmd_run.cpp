#include <cctype>
#include <cmath>
#include <cstdio>

#include "commands.h"
#include "core/file.h"
#include "option_rules.h"
#include "core/npy.h"
#include "onnx/onnx_io.h"
#include "yolo/detector.h"

namespace yoloc_cli {
namespace {

struct RunArgs {
    std::string model, image, input, save, outputs, save_input;
    yoloc::DetectorOptions det;
};

void print_output(const std::string& name, const yoloc::Tensor& y, const std::string& backend) {
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t i = 0; i < y.numel(); ++i) {
        mn = std::min(mn, y.at_f64(i));
        mx = std::max(mx, y.at_f64(i));
    }
    std::printf("%s %s %s min %.6g max %.6g (backend %s)\n", name.c_str(), yoloc::shape_str(y.shape()).c_str(),
                yoloc::dtype_name(y.dtype()), mn, mx, backend.c_str());
}

// A file name for an output: value names may hold '/' and ':' (torch exports).
std::string file_name_of(const std::string& value) {
    std::string r;
    for (char c : value) r += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
    return r.empty() ? std::string("output") : r;
}

// Float32 for .npy (the format yoloc writes); integer outputs are converted.
yoloc::Tensor as_f32(const yoloc::Tensor& t) {
    if (t.dtype() == yoloc::DType::Float32) return t;
    yoloc::Tensor r(yoloc::DType::Float32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = float(t.at_f64(i));
    return r;
}

Registrar reg("run", "run a model on one image or tensor and print or save its raw outputs (.npy)", [](CLI::App& app) {
    auto a = std::make_shared<RunArgs>();
    app.add_option("model", a->model, "ONNX model or GPU engine (*.engine)")->required();
    auto img = app.add_option("--image", a->image, "input image (JPEG or PNG), letterboxed like Ultralytics");
    auto inp = app.add_option("--input", a->input,
                              "input tensor as .npy (float32, the model's input shape): raw, no preprocessing");
    img->excludes(inp);
    app.add_option("--save", a->save, "write the first output as .npy (float32, the output's shape)");
    app.add_option("--save-input", a->save_input,
                   "write the input tensor (the letterboxed image) as .npy, to feed the same input to other runtimes");
    app.add_option("--outputs", a->outputs, "write every output into this folder as NAME.npy (float32)");
    app.add_option("--backend", a->det.backend, "CPU executor: fast or reference")
        ->check(CLI::IsMember({"fast", "reference"}))->capture_default_str();
    app.add_option("--threads", a->det.threads, "CPU threads (0 = all cores)")->check(rules::threads())->capture_default_str();
    return [a]() {
        YOLOC_CHECK(!a->image.empty() || !a->input.empty(), "give the input: --image FILE or --input FILE.npy");
        // The input first: a missing image is reported before a model is loaded.
        yoloc::Image img;
        if (!a->image.empty()) img = yoloc::load_image(a->image);
        std::vector<std::pair<std::string, yoloc::Tensor>> outs;
        yoloc::Tensor input;
        if (yoloc::is_engine_path(a->model)) {
            yoloc::Detector det(a->model, a->det);
            yoloc::Tensor x;
            if (!a->input.empty()) {
                x = yoloc::load_npy(a->input);
            } else {
                yoloc::LetterboxInfo lb;
                x = yoloc::preprocess(img, det.imgsz(), &lb);
            }
            input = x;
            outs.emplace_back(det.output_name(), det.infer(x));
        } else {
            // Any graph the executors run (detect, segment, pose...): every output.
            yoloc::Model m = yoloc::load_onnx(a->model);
            YOLOC_CHECK(m.graph.inputs.size() == 1, a->model, ": run takes models with one input; this one has ",
                        m.graph.inputs.size());
            yoloc::Tensor x;
            if (!a->input.empty()) {
                // The tensor's shape is what gets planned and allocated: it must be the
                // model's (bounded by the file's size, unlike a shape the model declares).
                x = yoloc::load_npy(a->input);
                const yoloc::ValueInfo& in0 = m.graph.inputs[0];
                bool fits = in0.shape.size() == x.rank();
                for (size_t k = 0; fits && k < in0.shape.size(); ++k)
                    fits = !in0.shape[k].known() || in0.shape[k].value == x.dim(k);
                YOLOC_CHECK(fits, a->input, ": shape ", yoloc::shape_str(x.shape()), " does not fit input '", in0.name,
                            "' of ", a->model);
            } else {
                yoloc::Detector det(m, a->det);  // letterbox size and batch as detect uses them
                yoloc::LetterboxInfo lb;
                x = yoloc::preprocess(img, det.imgsz(), &lb);
                m = det.model();
            }
            yoloc::ExecutorOptions eo;
            eo.threads = a->det.threads;
            auto exec = yoloc::make_executor(m, a->det.backend, eo);
            input = x;
            yoloc::TensorMap got = exec->run({{m.graph.inputs[0].name, x}});
            for (const auto& o : m.graph.outputs) outs.emplace_back(o.name, got.at(o.name));
        }
        for (const auto& o : outs) print_output(o.first, o.second, a->det.backend);
        if (!a->save_input.empty()) {
            yoloc::save_npy(a->save_input, input);
            info("wrote " + a->save_input);
        }
        if (!a->save.empty()) {
            yoloc::save_npy(a->save, as_f32(outs.at(0).second));
            info("wrote " + a->save);
        }
        if (!a->outputs.empty()) {
            yoloc::make_dirs(a->outputs);
            for (const auto& o : outs) yoloc::save_npy(yoloc::path_join(a->outputs, file_name_of(o.first) + ".npy"), as_f32(o.second));
            info("wrote " + std::to_string(outs.size()) + " outputs into " + a->outputs);
        }
        return 0;
    };
});

}  // namespace
}  // namespace yoloc_cli
