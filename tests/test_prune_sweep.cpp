// `yoloc prune --sweep`: the table, CSV, JSON and SVG it writes, checked against
// numbers computed independently through the library (pruning, cost model, eval).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "eval/evaluate.h"
#include "ir/cost.h"
#include "ir/shape_inference.h"
#include "onnx/onnx_io.h"
#include "prune/prune.h"
#include "prune/sweep.h"
#include "test_util.h"
#include "tiny_yolo_fixture.h"
#include "yolo/detector.h"
#include "yolo/generate.h"
#include "yolo/image.h"

using namespace yoloc;
using yoloc_test::put;
using yoloc_test::slurp;

namespace {

size_t count_of(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

ModelCost cost_of(const Model& m) {
    std::map<std::string, Shape> in;
    for (const auto& i : m.graph.inputs)
        if (!m.graph.is_initializer(i.name)) in[i.name] = Shape{1, 3, 64, 64};
    return count_cost(m, infer_shapes(m, in));
}

EvalResult eval_of(const Model& m, const std::string& yaml) {
    DetectorOptions o;
    o.threads = 1;
    Detector det(m, o);
    return evaluate(det, load_dataset(yaml, "val"), EvalOptions{});
}

}  // namespace

TEST(PruneSweep, TableJsonCsvAndSvgAgreeWithIndependentMeasurements) {
    yoloc_test::TinyYoloFixture fx("prune_sweep");
    const std::string out = fx.dir + "/sweep";
    // The cheapest refit (fixed ridge, no downstream refit, one pass 2 for all convs): this test is about the
    // table, and the default refit's cross-validation costs minutes under qemu (the aarch64 suite in CI); the
    // default refit is tested by Prune.ReconstructionReducesConsumerErrorOnHeldOutImages.
    auto r = yoloc_test::run_cli("prune " + fx.model + " --sweep 0.2,0.5 --calib " + fx.calib + " --data " + fx.yaml +
                                 " --out " + out + " --criterion activation --threads 1 --bench-threads 1 --bench-iters 2 --bench-warmup 0"
                                 " --recon-ridge 1e-3 --recon-refit-depth 0 --recon-all-at-once");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f : {"sweep.md", "sweep.json", "sweep.csv", "sweep.svg"})
        ASSERT_TRUE(yoloc_test::path_exists(out + "/" + f)) << f;

    nlohmann::json j = nlohmann::json::parse(slurp(out + "/sweep.json"));
    const auto& rows = j.at("rows");
    ASSERT_EQ(rows.size(), 5u);  // unpruned, then (no, yes) per ratio
    EXPECT_EQ(rows[0].at("ratio").get<double>(), 0.0);
    const double ratios[] = {0.2, 0.5};
    for (int k = 0; k < 2; ++k) {
        EXPECT_DOUBLE_EQ(rows[size_t(1 + 2 * k)].at("ratio").get<double>(), ratios[k]);
        EXPECT_FALSE(rows[size_t(1 + 2 * k)].at("reconstructed").get<bool>());
        EXPECT_DOUBLE_EQ(rows[size_t(2 + 2 * k)].at("ratio").get<double>(), ratios[k]);
        EXPECT_TRUE(rows[size_t(2 + 2 * k)].at("reconstructed").get<bool>());
    }

    // Parameters and FLOPs: the unpruned model's, and each ratio's from an independent prune.
    ModelCost c0 = cost_of(fx.m);
    EXPECT_EQ(rows[0].at("params").get<int64_t>(), c0.params);
    EXPECT_DOUBLE_EQ(rows[0].at("flops").get<double>(), c0.flops);
    Model plain05;
    for (int k = 0; k < 2; ++k) {
        PruneOptions po;
        po.scope = PruneScope::Bottleneck;
        po.ratio = ratios[k];
        po.criterion = Criterion::Activation;
        po.calib_dir = fx.calib;
        po.threads = 1;
        Model p = prune_model(fx.m, po, nullptr);
        ModelCost c = cost_of(p);
        EXPECT_LT(c.params, c0.params);
        for (int v = 0; v < 2; ++v) {
            EXPECT_EQ(rows[size_t(1 + 2 * k + v)].at("params").get<int64_t>(), c.params) << "ratio " << ratios[k];
            EXPECT_DOUBLE_EQ(rows[size_t(1 + 2 * k + v)].at("flops").get<double>(), c.flops) << "ratio " << ratios[k];
        }
        if (k == 1) plain05 = p;
    }
    EXPECT_LT(rows[3].at("params").get<int64_t>(), rows[1].at("params").get<int64_t>());

    // mAP: the unpruned and the plain 0.5 model evaluated here, directly.
    EvalResult e0 = eval_of(fx.m, fx.yaml);
    EXPECT_GT(e0.metrics.map50_95, 0.3);  // the labels are its own detections
    EXPECT_NEAR(rows[0].at("map50_95").get<double>(), e0.metrics.map50_95, 1e-9);
    EXPECT_NEAR(rows[0].at("map50").get<double>(), e0.metrics.map50, 1e-9);
    EvalResult e5 = eval_of(plain05, fx.yaml);
    EXPECT_NEAR(rows[3].at("map50_95").get<double>(), e5.metrics.map50_95, 1e-9);
    EXPECT_NEAR(rows[3].at("map50").get<double>(), e5.metrics.map50, 1e-9);
    for (const auto& w : rows) {
        EXPECT_GT(w.at("latency_median_ms").get<double>(), 0);
        EXPECT_LE(w.at("latency_min_ms").get<double>(), w.at("latency_median_ms").get<double>());
        EXPECT_GE(w.at("map50_95").get<double>(), 0);
        EXPECT_LE(w.at("map50_95").get<double>(), w.at("map50").get<double>() + 1e-12);
    }

    // Markdown: one table line per row, with the same numbers.
    std::string md = slurp(out + "/sweep.md");
    std::vector<std::string> lines;
    std::stringstream ms(md);
    for (std::string l; std::getline(ms, l);)
        if (l.rfind("| ", 0) == 0 && l.find("---") == std::string::npos && l.find("ratio |") == std::string::npos)
            lines.push_back(l);
    ASSERT_EQ(lines.size(), rows.size()) << md;
    for (size_t i = 0; i < rows.size(); ++i) {
        char want[160];
        std::snprintf(want, sizeof want, "| %lld | %.3f | %.1f | %.1f | %.3f | %.3f |",
                      (long long)rows[i].at("params").get<int64_t>(), rows[i].at("flops").get<double>() / 1e9,
                      rows[i].at("latency_median_ms").get<double>(), rows[i].at("latency_min_ms").get<double>(),
                      rows[i].at("map50").get<double>(), rows[i].at("map50_95").get<double>());
        EXPECT_NE(lines[i].find(want), std::string::npos) << lines[i] << "\nwant " << want;
        const char* rec = i == 0 ? "| - |" : rows[i].at("reconstructed").get<bool>() ? "| yes |" : "| no |";
        EXPECT_NE(lines[i].find(rec), std::string::npos) << lines[i];
    }

    // CSV: header plus one line per row, same values.
    std::string csv = slurp(out + "/sweep.csv");
    std::stringstream cs(csv);
    std::string header;
    std::getline(cs, header);
    EXPECT_EQ(header, "ratio,reconstructed,params,flops,latency_median_ms,latency_min_ms,map50,map50_95");
    size_t i = 0;
    for (std::string l; std::getline(cs, l); ++i) {
        ASSERT_LT(i, rows.size());
        double ratio, flops, lat, latmin, m50, m5095;
        int rec;
        long long params;
        ASSERT_EQ(std::sscanf(l.c_str(), "%lf,%d,%lld,%lf,%lf,%lf,%lf,%lf", &ratio, &rec, &params, &flops, &lat, &latmin,
                              &m50, &m5095),
                  8)
            << l;
        EXPECT_NEAR(ratio, rows[i].at("ratio").get<double>(), 1e-9);
        EXPECT_EQ(rec != 0, rows[i].at("reconstructed").get<bool>());
        EXPECT_EQ(params, rows[i].at("params").get<int64_t>());
        EXPECT_NEAR(m5095, rows[i].at("map50_95").get<double>(), 1e-6);
    }
    EXPECT_EQ(i, rows.size());

    // SVG: well formed enough, one marker per pruned model (+2 legend dots), one for the baseline.
    std::string svg = slurp(out + "/sweep.svg");
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    EXPECT_EQ(count_of(svg, "<circle"), 4u + 2u);
    EXPECT_EQ(count_of(svg, "<polyline"), 2u);
    EXPECT_EQ(count_of(svg, "<title>unpruned"), 1u);
    EXPECT_NE(svg.find("mAP50-95"), std::string::npos);
}

TEST(PruneSweep, BadSweepRequestsAreRejectedAndWriteNothing) {
    yoloc_test::TinyYoloFixture fx("prune_sweep_bad");
    const std::string out = fx.dir + "/sweep";
    const std::string base = "prune " + fx.model + " --out " + out + " --threads 1 ";
    struct Case {
        std::string args, message;
    } cases[] = {
        {"--sweep 0.2,1.5 --calib " + fx.calib + " --data " + fx.yaml, "outside (0, 1)"},
        {"--sweep 0.2,abc --calib " + fx.calib + " --data " + fx.yaml, "not a number"},
        {"--sweep 0.2 --data " + fx.yaml, "--calib"},
        {"--sweep 0.2 --calib " + fx.calib, "--data"},
        {"--sweep 0.2 --ratio 0.3 --calib " + fx.calib + " --data " + fx.yaml, "--sweep replaces"},
    };
    for (const auto& c : cases) {
        auto r = yoloc_test::run_cli(base + c.args);
        EXPECT_NE(r.code, 0) << c.args;
        EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
        EXPECT_FALSE(yoloc_test::path_exists(out)) << c.args;
    }
}
