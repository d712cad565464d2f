// CPU executors over the graph IR. Two implementations share this interface:
//  - ReferenceExecutor: plain loops, obviously correct, the oracle for every fast kernel;
//  - FastExecutor: fused, library-backed kernels (see fast_executor.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace yoloc {

using TensorMap = std::map<std::string, Tensor>;

struct ExecutorOptions {
    int threads = 0;  // 0 = all cores
};

class Executor {
public:
    virtual ~Executor() = default;
    // Runs the graph on named inputs; returns the graph outputs by name.
    virtual TensorMap run(const TensorMap& inputs) = 0;
    virtual const char* name() const = 0;
};

// Runs every node with the reference kernels of the op table (ir/op_table.h).
// `keep_intermediates` makes run() also return every intermediate value (for
// calibration, debugging and per-layer parity tests).
class ReferenceExecutor : public Executor {
public:
    explicit ReferenceExecutor(const Model& model, bool keep_intermediates = false);
    TensorMap run(const TensorMap& inputs) override;
    const char* name() const override { return "reference"; }

private:
    Model model_;
    bool keep_;
};

// Throws a clear error when `inputs` do not match the graph's declared inputs.
void check_inputs(const Graph& g, const TensorMap& inputs);

// Builds the best executor available: "reference" or "fast".
std::unique_ptr<Executor> make_executor(const Model& model, const std::string& kind,
                                        const ExecutorOptions& opts = {});

}  // namespace yoloc
