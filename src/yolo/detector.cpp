#include "yolo/detector.h"

#include <cctype>
#include <sstream>

#include "core/file.h"
#include "core/limits.h"
#include "onnx/onnx_io.h"
#include "yolo/input_size.h"
#ifdef YOLOC_HAVE_CUDA
#include "yoloc/engine.h"
#endif

namespace yoloc {

bool is_engine_path(const std::string& path) { return path_ext_lower(path) == ".engine"; }

#ifdef YOLOC_HAVE_CUDA
// One engine (weights on the device once) and this detector's own context.
class GpuDetector {
public:
    std::shared_ptr<gpu::Engine> engine;
    std::unique_ptr<gpu::Context> ctx;
};
#else
class GpuDetector {};
#endif

Detector::Detector(const std::string& model_path, const DetectorOptions& opts) : opts_(opts) {
    if (is_engine_path(model_path)) {
        init_engine(model_path);
        return;
    }
    model_ = load_onnx(model_path);
    source_ = model_path;
    init(opts);
}

Detector::Detector(const Model& model, const DetectorOptions& opts) : opts_(opts), model_(model) { init(opts); }

Detector::~Detector() = default;

std::unique_ptr<Detector> Detector::clone() const {
    if (!gpu_) return std::unique_ptr<Detector>(new Detector(model_, opts_));
#ifdef YOLOC_HAVE_CUDA
    std::unique_ptr<Detector> d(new Detector());
    d->opts_ = opts_;
    d->gpu_ = std::make_shared<GpuDetector>();
    d->gpu_->engine = gpu_->engine;
    d->gpu_->ctx.reset(new gpu::Context(gpu_->engine));
    d->imgsz_ = imgsz_;
    d->batch_ = batch_;
    d->nc_ = nc_;
    d->names_ = names_;
    d->input_name_ = input_name_;
    d->output_name_ = output_name_;
    return d;
#else
    fail("unreachable: GPU detector in a build without CUDA");
#endif
}

void Detector::init_engine(const std::string& path) {
#ifdef YOLOC_HAVE_CUDA
    gpu_ = std::make_shared<GpuDetector>();
    gpu_->engine = gpu::Engine::load(path);
    gpu_->ctx.reset(new gpu::Context(gpu_->engine));
    const gpu::EngineSummary& s = gpu_->engine->summary();
    YOLOC_CHECK(s.input_shape.size() == 4 && s.input_shape[2] == s.input_shape[3], path,
                ": the engine's input is not a square [N,3,S,S] image batch");
    YOLOC_CHECK(!s.output_shapes.empty() && s.output_shapes[0].size() == 3 && s.output_shapes[0][1] > 4, path,
                ": the engine's first output is neither [N, 4+nc, anchors] nor an end-to-end [N, K, 6]");
    end2end_ = is_end2end_output(s.output_shapes[0]);
    // A segment or pose engine has a second output or wider rows; detect refuses it below.
    if (s.output_shapes.size() > 1) task_ = Task::Segment;
    YOLOC_CHECK(opts_.imgsz <= 0 || opts_.imgsz == s.input_shape[2], path, ": this engine was built for ",
                s.input_shape[2], "x", s.input_shape[2], " input; rebuild it with --imgsz ", opts_.imgsz);
    imgsz_ = int(s.input_shape[2]);
    batch_ = int(s.input_shape[0]);
    nc_ = end2end_ ? 0 : int(s.output_shapes[0][1]) - 4;  // end-to-end rows carry class ids, not scores
    input_name_ = s.input_name;
    output_name_ = s.output_names.empty() ? "output0" : s.output_names[0];
    if (nc_ == 80) names_ = coco80_names();
    for (int i = int(names_.size()); i < nc_; ++i) names_.push_back("class" + std::to_string(i));
#else
    fail(path, ": this is a GPU engine file, and this yoloc was built without CUDA support; run it with a yoloc "
               "built on a machine with the CUDA toolkit, or give the ONNX model instead");
#endif
}

void Detector::init(const DetectorOptions& opts) {
    const Graph& g = model_.graph;
    limits::check("threads", limits::threads_problem(opts.threads));
    YOLOC_CHECK(opts.imgsz >= 0, "input size ", opts.imgsz, " is negative (0: the model's)");
    // Before anything is allocated for the input: its size comes from the file or the options.
    const std::vector<int64_t> dims = checked_input_dims(model_, source_, opts.batch > 1 ? opts.batch : 0, opts.imgsz);
    YOLOC_CHECK(!g.outputs.empty(), source_, ": the model has no outputs");
    const ValueInfo& in = g.inputs[0];
    input_name_ = in.name;
    output_name_ = g.outputs[0].name;
    const int64_t declared = in.shape[2].known() ? in.shape[2].value : 0;
    const int64_t declared_batch = in.shape[0].known() ? in.shape[0].value : 0;
    imgsz_ = int(dims[2]);
    batch_ = int(dims[0]);
    // A concrete input shape lets the executor plan; static exports are re-targeted
    // when another size or batch is asked for.
    const bool retargeted = declared != imgsz_ || declared_batch != batch_;
    if (retargeted) set_input_size(model_, batch_, imgsz_);
    ExecutorOptions eo;
    eo.threads = opts.threads;
    try {
        exec_ = make_executor(model_, opts.backend, eo);
    } catch (const Error& e) {
        // Planning at a batch or size the options asked for can fail deep in the graph
        // (shape inference bounds the tensors it materialises): say which request it was.
        if (!retargeted) throw;
        fail(source_, ": cannot run at batch ", batch_, " and input size ", imgsz_, " (", e.what(),
             "): use a smaller batch or input size");
    }
    // Task, head and classes from the architecture when recognised; else the declared
    // output [N, 4+nc, A].
    const YoloArch arch = recognize_yolo(model_);
    const ValueInfo& out = g.outputs[0];
    if (arch.recognised) {
        task_ = arch.task;
        end2end_ = arch.head.end2end;
        nc_ = int(arch.nc);
    } else if (out.shape.size() == 3 && out.shape[1].known()) {
        Shape os;
        for (const auto& d : out.shape) os.push_back(d.known() ? d.value : -1);
        end2end_ = is_end2end_output(os);
        if (!end2end_) nc_ = int(out.shape[1].value) - 4;
    }
    names_ = names_from_metadata(model_);
    if (nc_ <= 0) nc_ = int(names_.size());
    if (names_.empty() && nc_ == 80) names_ = coco80_names();
    for (int i = int(names_.size()); i < nc_; ++i) names_.push_back("class" + std::to_string(i));
}

Tensor Detector::infer(const Tensor& images) {
#ifdef YOLOC_HAVE_CUDA
    if (gpu_) {
        const Shape want{batch_, 3, imgsz_, imgsz_};
        YOLOC_CHECK(images.dtype() == DType::Float32 && images.shape() == want, "input has shape ",
                    shape_str(images.shape()), " but the engine expects ", shape_str(want));
        std::vector<std::vector<float>> outs;
        gpu_->ctx->infer(images.data<float>(), outs);
        const auto& sh = gpu_->engine->summary().output_shapes[0];
        Tensor y(DType::Float32, Shape(sh.begin(), sh.end()));
        std::copy(outs[0].begin(), outs[0].end(), y.data<float>());
        return y;
    }
#endif
    TensorMap out = exec_->run({{input_name_, images}});
    Tensor y = out.at(output_name_);
    YOLOC_CHECK(y.rank() == 3 && y.dim(1) > 4, "output '", output_name_, "' has shape ", shape_str(y.shape()),
                "; expected Ultralytics' [N, 4+nc, anchors] or an end-to-end [N, K, 6]");
    if (nc_ <= 0 && !end2end_) nc_ = int(y.dim(1)) - 4;
    return y;
}

void Detector::require_detection(const std::string& what) const {
    YOLOC_CHECK(task_ == Task::Detect, what, ": this is a ", task_name(task_), " model; detect and eval take "
                "detection models (segmentation and pose are not supported yet; `yoloc run` gives the raw outputs)");
}

std::vector<Detection> Detector::detect(const Image& img, const PostprocessOptions& opt, Tensor* raw) {
    require_detection("detect");
#ifdef YOLOC_HAVE_CUDA
    if (gpu_ && !raw && !end2end_) {  // letterbox, decode and NMS on the GPU; only detections come back
        gpu::GpuImage gi;
        gi.bgr = img.pixels.data();
        gi.width = img.width;
        gi.height = img.height;
        gpu::GpuDetectOptions go;
        go.conf_threshold = opt.conf_threshold;
        go.iou_threshold = opt.iou_threshold;
        go.max_det = opt.max_det;
        go.max_nms = opt.max_nms;
        go.multi_label = opt.multi_label;
        // Keep the result alive: a range-for over `detect(...)[0]` would iterate a
        // reference into a destroyed temporary.
        const std::vector<std::vector<gpu::GpuDetection>> found = gpu_->ctx->detect({gi}, go);
        std::vector<Detection> dets;
        for (const gpu::GpuDetection& g : found[0]) {
            Detection d;
            d.class_id = g.class_id;
            d.conf = g.conf;
            d.x1 = g.x1;
            d.y1 = g.y1;
            d.x2 = g.x2;
            d.y2 = g.y2;
            dets.push_back(d);
        }
        return dets;
    }
#endif
    YOLOC_CHECK(batch_ == 1, "detect() runs one image at a time; this model has batch ", batch_);
    LetterboxInfo info;
    Tensor x = preprocess(img, imgsz_, &info);
    Tensor y = infer(x);
    if (raw) *raw = y;
    return postprocess(y, 0, info, opt);
}

std::vector<std::string> names_from_metadata(const Model& model) {
    std::vector<std::string> names;
    for (const auto& kv : model.metadata) {
        if (kv.first != "names") continue;
        // Python dict repr: {0: 'person', 1: 'bicycle'}; quotes may be ' or ".
        const std::string& s = kv.second;
        size_t i = 0;
        while (i < s.size()) {
            size_t colon = s.find(':', i);
            if (colon == std::string::npos) break;
            size_t q = s.find_first_of("'\"", colon);
            if (q == std::string::npos) break;
            char quote = s[q];
            size_t e = s.find(quote, q + 1);
            if (e == std::string::npos) break;
            names.push_back(s.substr(q + 1, e - q - 1));
            i = e + 1;
        }
    }
    return names;
}

std::vector<std::string> load_names_file(const std::string& path) {
    std::string text = read_file(path);
    std::vector<std::string> names;
    std::istringstream is(text);
    std::string line;
    bool in_names = false, yaml = path_ext_lower(path) == ".yaml" || path_ext_lower(path) == ".yml";
    auto trim = [](std::string v) {
        size_t a = v.find_first_not_of(" \t\r'\""), b = v.find_last_not_of(" \t\r'\"");
        return a == std::string::npos ? std::string() : v.substr(a, b - a + 1);
    };
    while (std::getline(is, line)) {
        if (!yaml) {
            std::string t = trim(line);
            if (!t.empty()) names.push_back(t);
            continue;
        }
        if (line.rfind("names:", 0) == 0) {
            in_names = true;
            std::string rest = trim(line.substr(6));
            if (!rest.empty() && rest[0] == '[') {  // names: [a, b, c]
                rest = rest.substr(1, rest.find(']') == std::string::npos ? std::string::npos : rest.find(']') - 1);
                std::istringstream ls(rest);
                std::string item;
                while (std::getline(ls, item, ',')) names.push_back(trim(item));
                in_names = false;
            }
            continue;
        }
        if (!in_names) continue;
        if (line.empty() || !(line[0] == ' ' || line[0] == '\t' || line[0] == '-')) {
            if (!trim(line).empty()) in_names = false;
            continue;
        }
        std::string t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        if (t[0] == '-') names.push_back(trim(t.substr(1)));
        else {
            size_t c = t.find(':');
            names.push_back(trim(c == std::string::npos ? t : t.substr(c + 1)));
        }
    }
    YOLOC_CHECK(!names.empty(), path, ": no class names found (one name per line, or a data.yaml with names:)");
    return names;
}

}  // namespace yoloc
