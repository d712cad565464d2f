// The graph IR: what an ONNX model means, without the protobuf.
// ONNX -> IR (onnx/onnx_io) -> passes (ir/) -> plan -> backend (engine/).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace yoloc {

// One dimension of a declared shape: a number, or a symbolic name ("batch"), or unknown.
struct Dim {
    int64_t value = -1;  // >= 0 when known
    std::string param;   // symbolic name when value < 0 (may be empty: unknown)
    bool known() const { return value >= 0; }
};

struct ValueInfo {
    std::string name;
    DType dtype = DType::Float32;
    std::vector<Dim> shape;
    bool has_shape = true;  // false: ONNX declared no shape at all
    Shape concrete() const;  // throws when a dim is not known
};

struct Attribute {
    enum class Kind { Undefined, Float, Int, String, Tensor, Floats, Ints, Strings };
    Kind kind = Kind::Undefined;
    float f = 0;
    int64_t i = 0;
    std::string s;
    yoloc::Tensor t;
    std::vector<float> floats;
    std::vector<int64_t> ints;
    std::vector<std::string> strings;

    static Attribute of_int(int64_t v);
    static Attribute of_float(float v);
    static Attribute of_ints(std::vector<int64_t> v);
    static Attribute of_string(std::string v);
    static Attribute of_tensor(yoloc::Tensor v);
};

struct Node {
    std::string name;
    std::string op_type;
    std::string domain;  // "" = ai.onnx
    std::vector<std::string> inputs;   // "" marks an omitted optional input
    std::vector<std::string> outputs;
    std::map<std::string, Attribute> attrs;

    bool has(const std::string& a) const { return attrs.count(a) != 0; }
    int64_t attr_i(const std::string& a, int64_t dflt) const;
    float attr_f(const std::string& a, float dflt) const;
    std::string attr_s(const std::string& a, const std::string& dflt) const;
    std::vector<int64_t> attr_ints(const std::string& a, std::vector<int64_t> dflt = {}) const;
    // "name (OpType)" for messages.
    std::string label() const;
};

struct Graph {
    std::string name;
    std::vector<Node> nodes;                      // kept in topological order by passes
    std::map<std::string, Tensor> initializers;   // constant tensors by name
    std::vector<ValueInfo> inputs;                // graph inputs that are not initializers
    std::vector<ValueInfo> outputs;
    std::vector<ValueInfo> value_info;            // optional intermediate annotations
    std::string doc_string;

    bool is_initializer(const std::string& n) const { return initializers.count(n) != 0; }
    const Tensor* find_initializer(const std::string& n) const;
    // Index of the node producing `value`, or -1 (graph input / initializer / unknown).
    int producer(const std::string& value) const;
    // Indices of the nodes reading `value`.
    std::vector<int> consumers(const std::string& value) const;
    // Number of parameters = elements of all float initializers (what Ultralytics counts).
    int64_t parameter_count() const;
    int64_t weight_bytes() const;
    std::map<std::string, int> op_histogram() const;
    // A name not used by any value or node yet, starting from `base`.
    std::string unique_name(const std::string& base) const;
};

struct OpsetId {
    std::string domain;  // "" = ai.onnx
    int64_t version = 0;
};

struct Model {
    int64_t ir_version = 8;
    std::vector<OpsetId> opsets{{"", 17}};
    std::string producer_name = "yoloc";
    std::string producer_version;
    std::string domain;
    int64_t model_version = 0;
    std::string doc_string;
    std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props
    Graph graph;

    // Version of the default (ai.onnx) opset.
    int64_t opset() const;
};

// Checks that the graph is well-formed: every input is produced before use (or is a
// graph input / initializer), names are unique, no cycles. Reorders nodes topologically
// when they are out of order. Throws yoloc::Error naming the offending node.
void validate_and_sort(Graph& g);

// Removes nodes whose outputs nobody uses and initializers nobody reads.
void remove_dead(Graph& g);

}  // namespace yoloc
