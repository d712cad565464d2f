#include "ir/op_table.h"

#include <algorithm>
#include <map>

#include "ir/ops/common.h"

namespace yoloc {
namespace {

struct Table {
    std::vector<OpSchema> records;
    std::map<std::pair<std::string, std::string>, size_t> index;  // (domain, op) -> record
    std::vector<std::string> onnx_names;
};

const Table& table() {
    static const Table t = [] {
        Table r;
        ops::add_elementwise_ops(r.records);
        ops::add_nn_ops(r.records);
        ops::add_tensor_ops(r.records);
        ops::add_index_ops(r.records);
        ops::add_reduce_ops(r.records);
        ops::add_quant_ops(r.records);
        ops::add_fused_ops(r.records);
        for (size_t i = 0; i < r.records.size(); ++i) {
            const OpSchema& s = r.records[i];
            // Two records for one op would make the table's answer depend on order.
            if (!r.index.emplace(std::make_pair(s.domain, s.name), i).second)
                fail("op table: ", s.name, " is listed twice");
            if (s.domain.empty()) r.onnx_names.push_back(s.name);
        }
        std::sort(r.onnx_names.begin(), r.onnx_names.end());
        return r;
    }();
    return t;
}

}  // namespace

const OpSchema* find_op(const std::string& op_type, const std::string& domain) {
    const std::string d = domain == "ai.onnx" ? std::string() : domain;
    auto it = table().index.find({d, op_type});
    return it == table().index.end() ? nullptr : &table().records[it->second];
}

const OpSchema& op_schema(const Node& n) {
    if (const OpSchema* s = find_op(n.op_type, n.domain)) return *s;
    if (!n.domain.empty() && n.domain != "ai.onnx")
        fail("node ", n.label(), ": operator domain '", n.domain, "' is not supported (only ai.onnx)");
    fail("node ", n.label(), ": operator '", n.op_type, "' is not supported by yoloc; supported: see `yoloc check --help`");
}

const std::vector<std::string>& supported_ops() { return table().onnx_names; }

std::vector<Tensor> ref_eval(const Node& node, const std::vector<Tensor>& inputs, int64_t opset) {
    const OpSchema& s = op_schema(node);
    std::vector<Tensor> out = s.ref(node, inputs, opset);
    YOLOC_CHECK(out.size() >= node.outputs.size() || node.op_type == "MaxPool", "node ", node.label(), ": produced ",
                out.size(), " outputs, expected ", node.outputs.size());
    return out;
}

bool ref_supports(const std::string& op_type) { return find_op(op_type) != nullptr; }

}  // namespace yoloc
