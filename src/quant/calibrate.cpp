#include "quant/calibrate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "core/file.h"
#include "engine/cpu/executor.h"
#include "yolo/image.h"
#include "yolo/input_size.h"
#include "yolo/letterbox.h"

namespace yoloc {

CalibMethod parse_calib_method(const std::string& s) {
    if (s == "entropy") return CalibMethod::Entropy;
    if (s == "percentile") return CalibMethod::Percentile;
    if (s == "mse") return CalibMethod::Mse;
    if (s == "minmax") return CalibMethod::MinMax;
    fail("unknown calibration method '", s, "' (use entropy, percentile, mse or minmax)");
}

double amax_entropy(const std::vector<double>& hist_in, double bin_width) {
    const int n = int(hist_in.size());
    const int nq = 128;  // int8 magnitudes
    if (n <= nq) return n * bin_width;
    std::vector<double> bins = hist_in;
    // TensorRT ignores the spike at zero (ReLU/padding zeros) by flattening bin 0.
    bins[0] = bins[1];
    std::vector<double> tail(size_t(n) + 1, 0.0);  // tail[i] = sum(bins[i:])
    for (int i = n - 1; i >= 0; --i) tail[size_t(i)] = tail[size_t(i) + 1] + bins[size_t(i)];
    if (tail[0] <= 0) return n * bin_width;

    std::vector<double> qsum(size_t(nq), 0.0), ref(size_t(n), 0.0), q(size_t(n), 0.0);
    std::vector<int> qcnt(size_t(nq), 0), which(size_t(n), 0);
    double best = std::numeric_limits<double>::infinity();
    int best_i = n;
    for (int i = nq; i <= n; ++i) {
        std::fill(qsum.begin(), qsum.end(), 0.0);
        std::fill(qcnt.begin(), qcnt.end(), 0);
        // numpy: digitize(range(i), linspace(0, i, 129)) - 1, edges j * (i / 128).
        const double step = double(i) / nq;
        for (int idx = 0; idx < i; ++idx) {
            int j = int(std::floor(idx / step));
            while (j + 1 <= nq && (j + 1) * step <= idx) ++j;
            while (j > 0 && j * step > idx) --j;
            j = std::min(j, nq - 1);
            which[size_t(idx)] = j;
            if (bins[size_t(idx)] != 0) {
                qsum[size_t(j)] += bins[size_t(idx)];
                ++qcnt[size_t(j)];
            }
        }
        // Expand the 128-level distribution back over the i bins, empty bins stay empty.
        double qtot = 0, rtot = 0;
        for (int idx = 0; idx < i; ++idx) {
            int j = which[size_t(idx)];
            q[size_t(idx)] = bins[size_t(idx)] != 0 ? qsum[size_t(j)] / qcnt[size_t(j)] : 0.0;
            qtot += q[size_t(idx)];
            ref[size_t(idx)] = bins[size_t(idx)];
        }
        ref[size_t(i) - 1] += tail[size_t(i)];  // clipped values pile up in the last bin
        for (int idx = 0; idx < i; ++idx) rtot += ref[size_t(idx)];
        double kl = 0;
        for (int idx = 0; idx < i && kl < std::numeric_limits<double>::infinity(); ++idx) {
            double p = ref[size_t(idx)] / rtot;
            if (p <= 0) continue;
            double qq = qtot > 0 ? q[size_t(idx)] / qtot : 0;
            kl = qq > 0 ? kl + p * std::log(p / qq) : std::numeric_limits<double>::infinity();
        }
        // Last minimum wins (pytorch-quantization takes the last argmin).
        if (kl <= best) {
            best = kl;
            best_i = i;
        }
    }
    return best_i * bin_width;
}

double amax_percentile(const std::vector<double>& hist, double bin_width, double percentile) {
    YOLOC_CHECK(percentile > 0 && percentile <= 100, "percentile must be in (0, 100], got ", percentile);
    double total = 0;
    for (double h : hist) total += h;
    if (total <= 0) return hist.size() * bin_width;
    double target = total * percentile / 100.0, acc = 0;
    for (size_t i = 0; i < hist.size(); ++i) {
        acc += hist[i];
        if (acc >= target) return double(i + 1) * bin_width;
    }
    return hist.size() * bin_width;
}

double amax_mse(const std::vector<double>& hist, double bin_width) {
    const int n = int(hist.size());
    double best = std::numeric_limits<double>::infinity();
    double best_amax = n * bin_width;
    for (int i = std::min(128, n - 1); i < n; ++i) {
        double amax = (i + 0.5) * bin_width;
        double err = 0;
        for (int k = 0; k < n; ++k) {
            if (hist[size_t(k)] == 0) continue;
            double c = (k + 0.5) * bin_width;
            double qv = std::min(std::nearbyint(c * 127.0 / amax), 127.0) * amax / 127.0;
            err += (qv - c) * (qv - c) * hist[size_t(k)];
        }
        if (err < best) {
            best = err;
            best_amax = amax;
        }
    }
    return best_amax;
}

double choose_amax(const TensorStats& st, CalibMethod m, double percentile) {
    if (st.amax <= 0 || st.hist.empty()) return st.amax;
    switch (m) {
        case CalibMethod::MinMax: return st.amax;
        case CalibMethod::Entropy: return amax_entropy(st.hist, st.bin_width());
        case CalibMethod::Percentile: return amax_percentile(st.hist, st.bin_width(), percentile);
        case CalibMethod::Mse: return amax_mse(st.hist, st.bin_width());
    }
    return st.amax;
}

double clipping_ratio(const TensorStats& st, double amax) {
    if (st.hist.empty() || st.count <= 0 || st.amax <= 0) return 0;
    double above = 0, bw = st.bin_width();
    for (size_t i = 0; i < st.hist.size(); ++i)
        if (double(i) * bw >= amax * (1 - 1e-12)) above += st.hist[i];  // bins entirely above amax
    return above / st.count;
}

std::vector<std::string> calibration_images(const std::string& src, int count) {
    std::vector<std::string> files;
    auto is_image = [](const std::string& p) {
        std::string e = path_ext_lower(p);
        return e == ".jpg" || e == ".jpeg" || e == ".png";
    };
    if (is_directory(src)) {
        // Sub-folders too (a dataset's images/ folder holds train2017/...), sorted by path.
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(src, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->is_regular_file(ec) && is_image(it->path().string())) files.push_back(it->path().string());
        std::sort(files.begin(), files.end());
        YOLOC_CHECK(!files.empty(), src, ": no calibration images (.jpg, .jpeg, .png) in this folder or below it");
    } else if (file_exists(src) && path_ext_lower(src) == ".txt") {
        std::istringstream in(read_file(src));
        std::string line;
        while (std::getline(in, line)) {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
            if (line.empty() || line[0] == '#') continue;
            files.push_back(line[0] == '/' ? line : path_join(path_dirname(src), line));
        }
        YOLOC_CHECK(!files.empty(), src, ": the calibration list names no images");
    } else {
        fail(src, ": not a folder of calibration images or a .txt list of them");
    }
    if (count > 0) {
        YOLOC_CHECK(int(files.size()) >= count, src, ": --calib-count ", count, " but only ", files.size(),
                    " calibration images found");
        files.resize(size_t(count));
    }
    for (const auto& f : files) YOLOC_CHECK(file_exists(f), f, ": calibration image not found or not a file");
    return files;
}

int model_imgsz(const Model& m) {
    const auto& in = m.graph.inputs;
    if (!in.empty() && in[0].shape.size() == 4 && in[0].shape[2].known()) return int(in[0].shape[2].value);
    return 640;
}

Model with_extra_outputs(const Model& m, const std::vector<std::string>& values) {
    Model r = m;
    std::set<std::string> have;
    for (const auto& o : r.graph.outputs) have.insert(o.name);
    for (const auto& v : values) {
        if (!have.insert(v).second) continue;
        ValueInfo vi;
        vi.name = v;
        vi.has_shape = false;
        r.graph.outputs.push_back(vi);
    }
    return r;
}

namespace {

// A concrete batch-1 input so executors can plan (static exports already are).
Model concrete_model(const Model& m) {
    Model r = m;
    const auto& in = r.graph.inputs;
    YOLOC_CHECK(in.size() == 1 && in[0].shape.size() == 4, "calibration needs one [N,3,H,W] image input");
    bool ok = in[0].shape[0].value == 1 && in[0].shape[2].known() && in[0].shape[3].known();
    if (!ok) set_input_size(r, 1, model_imgsz(m));
    return r;
}

}  // namespace

std::map<std::string, TensorStats> collect_stats(const Model& model, const std::vector<std::string>& values,
                                                 const std::vector<std::string>& images, int threads,
                                                 const CalibProgress& progress) {
    YOLOC_CHECK(!images.empty(), "calibration needs at least one image");
    Model m = with_extra_outputs(concrete_model(model), values);
    const std::string input = m.graph.inputs[0].name;
    const int size = model_imgsz(m);
    ExecutorOptions eo;
    eo.threads = threads;
    std::unique_ptr<Executor> exec;
    bool keep_all = false;
    try {
        exec = make_executor(m, "fast", eo);
        // Planning happens lazily on the first run; try it on a blank image so a
        // value the fast plan cannot expose is found before any real work.
        exec->run({{input, Tensor(DType::Float32, {1, 3, size, size})}});
    } catch (const Error&) {
        exec.reset(new ReferenceExecutor(concrete_model(model), /*keep_intermediates=*/true));
        keep_all = true;
    }
    std::map<std::string, TensorStats> stats;
    for (const auto& v : values) stats[v];
    std::vector<Tensor> inputs;
    inputs.reserve(images.size());
    const int total = int(images.size()) * 2;
    int done = 0;
    auto run_one = [&](const Tensor& x) {
        TensorMap out = exec->run({{input, x}});
        for (auto& kv : stats) {
            auto it = out.find(kv.first);
            YOLOC_CHECK(it != out.end(), "calibration: value '", kv.first, "' was not produced");
            YOLOC_CHECK(it->second.dtype() == DType::Float32, "calibration: value '", kv.first, "' is not float32");
        }
        return out;
    };
    (void)keep_all;
    // Pass 1: max |x| of every value.
    for (const auto& path : images) {
        inputs.push_back(preprocess(load_image(path), size));
        TensorMap out = run_one(inputs.back());
        for (auto& kv : stats) {
            const Tensor& t = out.at(kv.first);
            const float* p = t.data<float>();
            double mx = kv.second.amax;
            for (int64_t i = 0; i < t.numel(); ++i) mx = std::max(mx, double(std::fabs(p[i])));
            kv.second.amax = mx;
        }
        if (progress) progress(++done, total);
    }
    // Pass 2: histograms over [0, amax] (the range is final, so no re-binning).
    for (auto& kv : stats) kv.second.hist.assign(kCalibBins, 0.0);
    for (const auto& x : inputs) {
        TensorMap out = run_one(x);
        for (auto& kv : stats) {
            const Tensor& t = out.at(kv.first);
            const float* p = t.data<float>();
            TensorStats& st = kv.second;
            double inv = st.amax > 0 ? kCalibBins / st.amax : 0;
            for (int64_t i = 0; i < t.numel(); ++i) {
                int b = int(std::fabs(p[i]) * inv);
                st.hist[size_t(std::min(b, kCalibBins - 1))] += 1;
            }
            st.count += double(t.numel());
        }
        if (progress) progress(++done, total);
    }
    return stats;
}

}  // namespace yoloc
