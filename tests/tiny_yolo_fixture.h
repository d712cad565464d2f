// A tiny labelled YOLOv8 set-up for CLI tests that run whole stages (prune --sweep,
// pipeline): a generated YOLOv8n at 64 pixels, six pictures, and labels made from the
// model's own detections, so its mAP is well above 0 and pruning or quantizing moves it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "onnx/onnx_io.h"
#include "test_util.h"
#include "yolo/detector.h"
#include "yolo/generate.h"
#include "yolo/image.h"

namespace yoloc_test {

inline std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline void put(const std::string& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary);
    f << s;
}

// A generated YOLOv8n at 64 pixels, 6 random pictures, and labels that are the unpruned
// model's own detections (so its mAP is well above 0 and pruning moves it).
struct TinyYoloFixture {
    std::string dir, model, yaml, calib;
    yoloc::Model m;
    explicit TinyYoloFixture(const std::string& name) {
        dir = scratch_dir(name);
        yoloc::GenerateOptions g;
        g.scale = "n";
        g.nc = 3;
        g.imgsz = 64;
        m = yoloc::generate_yolov8(g);
        // Generated class biases make every score tiny (below eval's 0.001): lift them so the
        // model detects something and mAP can move.
        int lifted = 0;
        for (auto& kv : m.graph.initializers)
            if (kv.first.find("cv3.") != std::string::npos && kv.first.size() > 7 &&
                kv.first.compare(kv.first.size() - 7, 7, ".2.bias") == 0) {
                for (int64_t i = 0; i < kv.second.numel(); ++i) kv.second.data<float>()[i] += 7.f;
                ++lifted;
            }
        EXPECT_EQ(lifted, 3);
        model = dir + "/n64.onnx";
        yoloc::save_onnx(m, model);
        calib = dir + "/ds/images/val";
        std::system(("mkdir -p '" + calib + "' '" + dir + "/ds/labels/val'").c_str());
        std::mt19937 rng(7);
        yoloc::DetectorOptions o;
        o.threads = 1;
        yoloc::Detector det(m, o);
        yoloc::PostprocessOptions pp;
        pp.conf_threshold = 0.3f;
        for (int i = 0; i < 6; ++i) {
            yoloc::Image img(64, 64);
            for (auto& px : img.pixels) px = uint8_t(rng() % 256);
            for (int y = 8 + 4 * i; y < 40 + 2 * i; ++y)
                for (int x = 10; x < 50; ++x) img.row(y)[3 * x] = 255;  // a bright block
            std::string stem = "img" + std::to_string(i);
            yoloc::save_png(calib + "/" + stem + ".png", img);
            std::string lab;
            int k = 0;
            for (const auto& d : det.detect(img, pp)) {
                if (k++ == 4) break;
                char line[128];
                std::snprintf(line, sizeof line, "%d %.5f %.5f %.5f %.5f\n", d.class_id, (d.x1 + d.x2) / 128.0,
                              (d.y1 + d.y2) / 128.0, (d.x2 - d.x1) / 64.0, (d.y2 - d.y1) / 64.0);
                lab += line;
            }
            if (lab.empty()) lab = "0 0.5 0.45 0.6 0.5\n";
            put(dir + "/ds/labels/val/" + stem + ".txt", lab);
        }
        yaml = dir + "/ds/data.yaml";
        put(yaml, "path: .\ntrain: images/val\nval: images/val\nnames: [a, b, c]\n");
    }
};

}  // namespace yoloc_test
