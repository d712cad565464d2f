#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "onnx/onnx_io.h"
#include "quant/trt_rules.h"

namespace yoloc_cli {
namespace {

Registrar reg("check", "lint a model against a target's rules (TensorRT explicit quantization, supported ops)",
              [](CLI::App& app) {
    auto model = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>("tensorrt");
    auto json = std::make_shared<bool>(false);
    app.add_option("model", *model, "ONNX model")->required();
    app.add_option("--target", *target, "tensorrt or yoloc")
        ->check(CLI::IsMember({"tensorrt", "yoloc"}))->capture_default_str();
    app.add_flag("--json", *json, "print the violations as JSON");
    return [=]() {
        yoloc::Model m = yoloc::load_onnx(*model);
        std::vector<yoloc::Violation> v = yoloc::check_model(m, *target);
        if (*json) {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& x : v) arr.push_back({{"node", x.node}, {"rule", x.rule}, {"message", x.message}, {"fix", x.fix}});
            std::printf("%s\n", nlohmann::json{{"model", *model}, {"target", *target}, {"violations", arr}}.dump(1).c_str());
        } else {
            for (const auto& x : v) std::printf("%s\n", x.line().c_str());
        }
        info(v.empty() ? *model + ": no violations for target " + *target
                       : *model + ": " + std::to_string(v.size()) + " violation(s) for target " + *target);
        return v.empty() ? 0 : 3;
    };
});

}  // namespace
}  // namespace yoloc_cli
