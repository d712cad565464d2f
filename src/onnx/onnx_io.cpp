#include "onnx/onnx_io.h"

#include <cstring>

#include "core/file.h"
#include "onnx/wire.h"

namespace yoloc {
namespace {

using wire::Reader;
using wire::Writer;

// Field numbers from onnx.proto (ONNX IR spec).
namespace model_f { enum { ir_version = 1, producer_name = 2, producer_version = 3, domain = 4, model_version = 5,
                           doc_string = 6, graph = 7, opset_import = 8, metadata_props = 14, functions = 25 }; }
namespace graph_f { enum { node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12,
                           value_info = 13, sparse_initializer = 15 }; }
namespace node_f { enum { input = 1, output = 2, name = 3, op_type = 4, attribute = 5, doc_string = 6, domain = 7 }; }
namespace attr_f { enum { name = 1, f = 2, i = 3, s = 4, t = 5, g = 6, floats = 7, ints = 8, strings = 9,
                          tensors = 10, graphs = 11, type = 20 }; }
namespace tensor_f { enum { dims = 1, data_type = 2, float_data = 4, int32_data = 5, string_data = 6,
                            int64_data = 7, name = 8, raw_data = 9, double_data = 10, uint64_data = 11,
                            external_data = 13, data_location = 14 }; }
namespace attr_type { enum { FLOAT = 1, INT = 2, STRING = 3, TENSOR = 4, GRAPH = 5, FLOATS = 6, INTS = 7,
                             STRINGS = 8, TENSORS = 9, GRAPHS = 10 }; }

// Largest tensor we accept: 2^34 elements (64 GiB of float32) is far past any
// detector; the real guard is that the bytes must exist in the file.
constexpr int64_t kMaxTensorElements = int64_t(1) << 34;
constexpr size_t kMaxNodes = 1u << 22;

struct Ctx {
    const std::string* origin;
    std::string ext_dir;
};

// Reads a repeated int64 field (packed or not) into v.
void read_int64s(Reader& r, uint32_t type, std::vector<int64_t>& v) {
    if (type == wire::Bytes) {
        Reader sub = r.bytes();
        while (!sub.done()) v.push_back(int64_t(sub.varint()));
    } else if (type == wire::Varint) {
        v.push_back(int64_t(r.varint()));
    } else {
        r.bad("bad wire type for an int64 list");
    }
}

void read_floats(Reader& r, uint32_t type, std::vector<float>& v) {
    if (type == wire::Bytes) {
        Reader sub = r.bytes();
        if (sub.remaining() % 4) r.bad("packed float list with a length not divisible by 4");
        v.reserve(v.size() + sub.remaining() / 4);
        while (!sub.done()) {
            uint32_t u = sub.fixed32();
            float f;
            std::memcpy(&f, &u, 4);
            v.push_back(f);
        }
    } else if (type == wire::Fixed32) {
        uint32_t u = r.fixed32();
        float f;
        std::memcpy(&f, &u, 4);
        v.push_back(f);
    } else {
        r.bad("bad wire type for a float list");
    }
}

void read_doubles(Reader& r, uint32_t type, std::vector<double>& v) {
    if (type == wire::Bytes) {
        Reader sub = r.bytes();
        if (sub.remaining() % 8) r.bad("packed double list with a length not divisible by 8");
        while (!sub.done()) {
            uint64_t u = sub.fixed64();
            double d;
            std::memcpy(&d, &u, 8);
            v.push_back(d);
        }
    } else if (type == wire::Fixed64) {
        uint64_t u = r.fixed64();
        double d;
        std::memcpy(&d, &u, 8);
        v.push_back(d);
    } else {
        r.bad("bad wire type for a double list");
    }
}

Tensor parse_tensor(Reader r, const Ctx& ctx, std::string* name_out) {
    std::vector<int64_t> dims;
    int32_t data_type = 0;
    std::string name;
    const char* raw = nullptr;
    size_t raw_n = 0;
    bool has_raw = false;
    std::vector<float> f32;
    std::vector<int64_t> i32, i64, u64;  // int32_data / int64_data / uint64_data, widened
    std::vector<double> f64;
    std::vector<std::pair<std::string, std::string>> external;
    int64_t location = 0;
    uint32_t field, type;
    while (r.tag(field, type)) {
        switch (field) {
            case tensor_f::dims: read_int64s(r, type, dims); break;
            case tensor_f::data_type: data_type = int32_t(r.varint()); break;
            case tensor_f::name: name = r.str(); break;
            case tensor_f::raw_data: {
                Reader b = r.bytes();
                raw = b.ptr();
                raw_n = b.remaining();
                has_raw = true;
                break;
            }
            case tensor_f::float_data: read_floats(r, type, f32); break;
            case tensor_f::int32_data: read_int64s(r, type, i32); break;
            case tensor_f::int64_data: read_int64s(r, type, i64); break;
            case tensor_f::uint64_data: read_int64s(r, type, u64); break;
            case tensor_f::double_data: read_doubles(r, type, f64); break;
            case tensor_f::string_data: fail(*ctx.origin, ": tensor '", name, "' holds strings, which yoloc does not support");
            case tensor_f::external_data: {
                Reader e = r.bytes();
                std::string k, v;
                uint32_t ef, et;
                while (e.tag(ef, et)) {
                    if (ef == 1) k = e.str();
                    else if (ef == 2) v = e.str();
                    else e.skip(et);
                }
                external.emplace_back(k, v);
                break;
            }
            case tensor_f::data_location: location = int64_t(r.varint()); break;
            default: r.skip(type);
        }
    }
    if (name_out) *name_out = name;
    const std::string label = name.empty() ? std::string("<unnamed>") : name;
    if (!dtype_known(data_type))
        fail(*ctx.origin, ": tensor '", label, "' has data type ", data_type, ", which yoloc does not support");
    DType dt = static_cast<DType>(data_type);
    for (int64_t d : dims)
        if (d < 0) fail(*ctx.origin, ": tensor '", label, "' has a negative dimension");
    int64_t numel;
    try {
        numel = shape_numel(dims, kMaxTensorElements);
    } catch (const Error&) {
        fail(*ctx.origin, ": tensor '", label, "' claims shape ", shape_str(dims),
             ", more elements than any real model has; the file is corrupt");
    }
    size_t esize = dtype_size(dt);
    size_t want = size_t(numel) * esize;

    std::string ext_bytes;
    if (location == 1 || !external.empty()) {
        std::string loc;
        int64_t offset = 0, length = -1;
        for (auto& kv : external) {
            if (kv.first == "location") loc = kv.second;
            else if (kv.first == "offset") offset = std::atoll(kv.second.c_str());
            else if (kv.first == "length") length = std::atoll(kv.second.c_str());
        }
        if (loc.empty()) fail(*ctx.origin, ": tensor '", label, "' is external but names no file");
        if (loc[0] == '/' || loc.find("..") != std::string::npos)
            fail(*ctx.origin, ": tensor '", label, "' points outside the model's folder (", loc, "); refusing to read it");
        std::string path = path_join(ctx.ext_dir, loc);
        if (!file_exists(path))
            fail(*ctx.origin, ": external data file '", path, "' for tensor '", label,
                 "' is missing; keep it beside the .onnx file");
        std::string all = read_file(path);
        if (length < 0) length = int64_t(all.size()) - offset;
        if (offset < 0 || length < 0 || uint64_t(offset) + uint64_t(length) > all.size())
            fail(*ctx.origin, ": external data for tensor '", label, "' (offset ", offset, ", length ", length,
                 ") runs past the end of '", path, "'");
        ext_bytes = all.substr(size_t(offset), size_t(length));
        raw = ext_bytes.data();
        raw_n = ext_bytes.size();
        has_raw = true;
    }

    auto mismatch = [&](size_t have) {
        fail(*ctx.origin, ": tensor '", label, "' of shape ", shape_str(dims), " needs ", want, " bytes but holds ",
             have, "; the file is truncated or corrupt");
    };
    if (has_raw) {
        if (raw_n != want) mismatch(raw_n);
        Tensor t(dt, dims);
        if (want) std::memcpy(t.raw(), raw, want);
        return t;
    }
    // Typed fields: ONNX stores each dtype in one specific field; its element
    // count must match before we allocate.
    size_t have_count = 0;
    switch (dt) {
        case DType::Float32: have_count = f32.size(); break;
        case DType::Float64: have_count = f64.size(); break;
        case DType::Int64: have_count = i64.size(); break;
        case DType::UInt32: case DType::UInt64: have_count = u64.size(); break;
        default: have_count = i32.size(); break;
    }
    if (have_count != size_t(numel)) mismatch(have_count * esize);
    Tensor t(dt, dims);
    for (int64_t k = 0; k < numel; ++k) {
        size_t i = size_t(k);
        switch (dt) {
            case DType::Float32: t.data<float>()[i] = f32[i]; break;
            case DType::Float64: t.data<double>()[i] = f64[i]; break;
            case DType::Int64: t.data<int64_t>()[i] = i64[i]; break;
            case DType::Int32: t.data<int32_t>()[i] = int32_t(i32[i]); break;
            case DType::Int16: t.data<int16_t>()[i] = int16_t(i32[i]); break;
            case DType::UInt16: case DType::Float16: case DType::BFloat16:
                t.data<uint16_t>()[i] = uint16_t(i32[i]); break;
            case DType::Int8: t.data<int8_t>()[i] = int8_t(i32[i]); break;
            case DType::UInt8: case DType::Bool: t.data<uint8_t>()[i] = uint8_t(i32[i]); break;
            case DType::UInt32: t.data<uint32_t>()[i] = uint32_t(u64[i]); break;
            case DType::UInt64: t.data<uint64_t>()[i] = uint64_t(u64[i]); break;
            default: fail(*ctx.origin, ": tensor '", label, "': unsupported data type");
        }
    }
    return t;
}

ValueInfo parse_value_info(Reader r, const Ctx& ctx) {
    ValueInfo vi;
    vi.has_shape = false;
    uint32_t field, type;
    while (r.tag(field, type)) {
        if (field == 1) {
            vi.name = r.str();
        } else if (field == 2) {  // TypeProto
            Reader tp = r.bytes();
            uint32_t tf, tt;
            while (tp.tag(tf, tt)) {
                if (tf != 1) {  // only tensor_type
                    if (tf == 4 || tf == 5 || tf == 9 || tf == 8)
                        fail(*ctx.origin, ": value '", vi.name, "' is not a plain tensor (sequence/map/optional/sparse); not supported");
                    tp.skip(tt);
                    continue;
                }
                Reader tt_r = tp.bytes();
                uint32_t f2, t2;
                while (tt_r.tag(f2, t2)) {
                    if (f2 == 1) {
                        int32_t et = int32_t(tt_r.varint());
                        vi.dtype = dtype_known(et) ? static_cast<DType>(et) : DType::Undefined;
                    } else if (f2 == 2) {
                        vi.has_shape = true;
                        Reader sh = tt_r.bytes();
                        uint32_t f3, t3;
                        while (sh.tag(f3, t3)) {
                            if (f3 != 1) {
                                sh.skip(t3);
                                continue;
                            }
                            Reader dr = sh.bytes();
                            Dim d;
                            uint32_t f4, t4;
                            while (dr.tag(f4, t4)) {
                                if (f4 == 1) d.value = int64_t(dr.varint());
                                else if (f4 == 2) d.param = dr.str();
                                else dr.skip(t4);
                            }
                            if (d.value < 0 && d.param.empty()) d.value = -1;
                            if (vi.shape.size() > 64) fail(*ctx.origin, ": value '", vi.name, "' has more than 64 dimensions");
                            vi.shape.push_back(d);
                        }
                    } else {
                        tt_r.skip(t2);
                    }
                }
            }
        } else {
            r.skip(type);
        }
    }
    return vi;
}

Attribute parse_attribute(Reader r, const Ctx& ctx, const std::string& node_label, std::string& name) {
    Attribute a;
    int64_t declared = 0;
    bool saw_f = false, saw_i = false, saw_s = false, saw_t = false;
    uint32_t field, type;
    while (r.tag(field, type)) {
        switch (field) {
            case attr_f::name: name = r.str(); break;
            case attr_f::type: declared = int64_t(r.varint()); break;
            case attr_f::f: {
                if (type != wire::Fixed32) r.bad("attribute float with a bad wire type");
                uint32_t u = r.fixed32();
                std::memcpy(&a.f, &u, 4);
                saw_f = true;
                break;
            }
            case attr_f::i: a.i = int64_t(r.varint()); saw_i = true; break;
            case attr_f::s: a.s = r.str(); saw_s = true; break;
            case attr_f::t: a.t = parse_tensor(r.bytes(), ctx, nullptr); saw_t = true; break;
            case attr_f::floats: read_floats(r, type, a.floats); break;
            case attr_f::ints: read_int64s(r, type, a.ints); break;
            case attr_f::strings: a.strings.push_back(r.str()); break;
            case attr_f::g: case attr_f::graphs:
                fail(*ctx.origin, ": node ", node_label, " has a subgraph attribute (control flow); yoloc supports "
                     "straight-line detection graphs only");
            case attr_f::tensors: fail(*ctx.origin, ": node ", node_label, ": tensor-list attributes are not supported");
            default: r.skip(type);
        }
    }
    switch (declared) {
        case attr_type::FLOAT: a.kind = Attribute::Kind::Float; break;
        case attr_type::INT: a.kind = Attribute::Kind::Int; break;
        case attr_type::STRING: a.kind = Attribute::Kind::String; break;
        case attr_type::TENSOR: a.kind = Attribute::Kind::Tensor; break;
        case attr_type::FLOATS: a.kind = Attribute::Kind::Floats; break;
        case attr_type::INTS: a.kind = Attribute::Kind::Ints; break;
        case attr_type::STRINGS: a.kind = Attribute::Kind::Strings; break;
        case 0:  // very old files omit the type: infer it from what was set
            a.kind = saw_t ? Attribute::Kind::Tensor : saw_s ? Attribute::Kind::String : saw_f ? Attribute::Kind::Float
                   : saw_i ? Attribute::Kind::Int : !a.ints.empty() ? Attribute::Kind::Ints
                   : !a.floats.empty() ? Attribute::Kind::Floats : Attribute::Kind::Strings;
            break;
        default:
            fail(*ctx.origin, ": node ", node_label, ": attribute '", name, "' has type ", declared, ", not supported");
    }
    return a;
}

Node parse_node(Reader r, const Ctx& ctx) {
    Node n;
    std::vector<Reader> attrs;
    uint32_t field, type;
    while (r.tag(field, type)) {
        switch (field) {
            case node_f::input: n.inputs.push_back(r.str()); break;
            case node_f::output: n.outputs.push_back(r.str()); break;
            case node_f::name: n.name = r.str(); break;
            case node_f::op_type: n.op_type = r.str(); break;
            case node_f::domain: n.domain = r.str(); break;
            case node_f::attribute: attrs.push_back(r.bytes()); break;
            default: r.skip(type);
        }
    }
    if (n.domain == "ai.onnx") n.domain.clear();
    if (n.op_type.empty()) fail(*ctx.origin, ": a node has no op_type; the file is corrupt");
    for (auto& ar : attrs) {
        std::string an;
        Attribute a = parse_attribute(ar, ctx, n.label(), an);
        n.attrs[an] = std::move(a);
    }
    return n;
}

Graph parse_graph(Reader r, const Ctx& ctx) {
    Graph g;
    std::vector<ValueInfo> all_inputs;
    uint32_t field, type;
    while (r.tag(field, type)) {
        switch (field) {
            case graph_f::node:
                if (g.nodes.size() >= kMaxNodes) fail(*ctx.origin, ": more than ", kMaxNodes, " nodes");
                g.nodes.push_back(parse_node(r.bytes(), ctx));
                break;
            case graph_f::name: g.name = r.str(); break;
            case graph_f::initializer: {
                std::string name;
                Tensor t = parse_tensor(r.bytes(), ctx, &name);
                if (name.empty()) fail(*ctx.origin, ": an initializer has no name");
                if (g.initializers.count(name)) fail(*ctx.origin, ": initializer '", name, "' is defined twice");
                g.initializers.emplace(name, std::move(t));
                break;
            }
            case graph_f::sparse_initializer:
                fail(*ctx.origin, ": sparse initializers are not supported; densify the model first");
            case graph_f::doc_string: g.doc_string = r.str(); break;
            case graph_f::input: all_inputs.push_back(parse_value_info(r.bytes(), ctx)); break;
            case graph_f::output: g.outputs.push_back(parse_value_info(r.bytes(), ctx)); break;
            case graph_f::value_info: g.value_info.push_back(parse_value_info(r.bytes(), ctx)); break;
            default: r.skip(type);
        }
    }
    // Older exporters list initializers among the inputs too; those are constants.
    for (auto& in : all_inputs)
        if (!g.is_initializer(in.name)) g.inputs.push_back(std::move(in));
    return g;
}

// ---- writing ----

void write_tensor(Writer& w, const Tensor& t, const std::string& name) {
    for (int64_t d : t.shape()) w.int_field(tensor_f::dims, d);
    w.int_field(tensor_f::data_type, int64_t(t.dtype()));
    if (!name.empty()) w.string_field(tensor_f::name, name);
    w.bytes_field(tensor_f::raw_data, reinterpret_cast<const char*>(t.raw()), t.nbytes());
}

void write_value_info(Writer& w, const ValueInfo& vi) {
    w.string_field(1, vi.name);
    Writer type, tensor_type, shape;
    tensor_type.int_field(1, int64_t(vi.dtype));
    if (vi.has_shape) {
        for (const auto& d : vi.shape) {
            Writer dim;
            if (d.known()) dim.int_field(1, d.value);
            else if (!d.param.empty()) dim.string_field(2, d.param);
            shape.message_field(1, dim);
        }
        tensor_type.message_field(2, shape);
    }
    type.message_field(1, tensor_type);
    w.message_field(2, type);
}

void write_attribute(Writer& w, const std::string& name, const Attribute& a) {
    w.string_field(attr_f::name, name);
    switch (a.kind) {
        case Attribute::Kind::Float: w.float_field(attr_f::f, a.f); w.int_field(attr_f::type, attr_type::FLOAT); break;
        case Attribute::Kind::Int: w.int_field(attr_f::i, a.i); w.int_field(attr_f::type, attr_type::INT); break;
        case Attribute::Kind::String: w.string_field(attr_f::s, a.s); w.int_field(attr_f::type, attr_type::STRING); break;
        case Attribute::Kind::Tensor: {
            Writer t;
            write_tensor(t, a.t, "");
            w.message_field(attr_f::t, t);
            w.int_field(attr_f::type, attr_type::TENSOR);
            break;
        }
        case Attribute::Kind::Floats:
            for (float f : a.floats) w.float_field(attr_f::floats, f);
            w.int_field(attr_f::type, attr_type::FLOATS);
            break;
        case Attribute::Kind::Ints:
            for (int64_t i : a.ints) w.int_field(attr_f::ints, i);
            w.int_field(attr_f::type, attr_type::INTS);
            break;
        case Attribute::Kind::Strings:
            for (const auto& s : a.strings) w.string_field(attr_f::strings, s);
            w.int_field(attr_f::type, attr_type::STRINGS);
            break;
        default: fail("attribute '", name, "' has no value; cannot write it");
    }
}

}  // namespace

Model parse_onnx(const std::string& bytes, const std::string& origin, const OnnxReadOptions& opts) {
    Ctx ctx{&origin, opts.external_data_dir.empty() ? path_dirname(origin) : opts.external_data_dir};
    if (bytes.empty()) fail(origin, ": the file is empty; expected an ONNX model");
    Model m;
    m.opsets.clear();
    m.producer_name.clear();
    m.ir_version = 0;
    bool have_graph = false;
    Reader r(bytes.data(), bytes.size(), &origin);
    uint32_t field, type;
    while (r.tag(field, type)) {
        switch (field) {
            case model_f::ir_version: m.ir_version = int64_t(r.varint()); break;
            case model_f::producer_name: m.producer_name = r.str(); break;
            case model_f::producer_version: m.producer_version = r.str(); break;
            case model_f::domain: m.domain = r.str(); break;
            case model_f::model_version: m.model_version = int64_t(r.varint()); break;
            case model_f::doc_string: m.doc_string = r.str(); break;
            case model_f::graph:
                if (type != wire::Bytes) r.bad("graph field with a bad wire type");
                m.graph = parse_graph(r.bytes(), ctx);
                have_graph = true;
                break;
            case model_f::opset_import: {
                Reader o = r.bytes();
                OpsetId id;
                uint32_t f2, t2;
                while (o.tag(f2, t2)) {
                    if (f2 == 1) id.domain = o.str();
                    else if (f2 == 2) id.version = int64_t(o.varint());
                    else o.skip(t2);
                }
                if (id.domain == "ai.onnx") id.domain.clear();
                m.opsets.push_back(id);
                break;
            }
            case model_f::metadata_props: {
                Reader e = r.bytes();
                std::string k, v;
                uint32_t f2, t2;
                while (e.tag(f2, t2)) {
                    if (f2 == 1) k = e.str();
                    else if (f2 == 2) v = e.str();
                    else e.skip(t2);
                }
                m.metadata.emplace_back(k, v);
                break;
            }
            default: r.skip(type);
        }
    }
    if (!have_graph || m.ir_version == 0)
        fail(origin, ": not an ONNX model (no graph or no IR version found); expected a file from torch.onnx.export "
             "or `yolo export format=onnx`");
    int64_t opset = m.opset();
    if (opset == 0) fail(origin, ": the model imports no ai.onnx opset; re-export it");
    if (opset > 22) fail(origin, ": opset ", opset, " is newer than yoloc supports (13..21); export with opset 17");
    if (opts.validate) {
        try {
            validate_and_sort(m.graph);
        } catch (const Error& e) {
            fail(origin, ": ", e.what());
        }
    }
    return m;
}

Model load_onnx(const std::string& path, const OnnxReadOptions& opts) {
    require_regular_file(path, "an .onnx model");
    return parse_onnx(read_file(path), path, opts);
}

std::string serialize_onnx(const Model& m) {
    Writer w;
    w.int_field(model_f::ir_version, m.ir_version);
    for (const auto& o : m.opsets) {
        Writer ow;
        if (!o.domain.empty()) ow.string_field(1, o.domain);
        ow.int_field(2, o.version);
        w.message_field(model_f::opset_import, ow);
    }
    if (!m.producer_name.empty()) w.string_field(model_f::producer_name, m.producer_name);
    if (!m.producer_version.empty()) w.string_field(model_f::producer_version, m.producer_version);
    if (!m.domain.empty()) w.string_field(model_f::domain, m.domain);
    if (m.model_version) w.int_field(model_f::model_version, m.model_version);
    if (!m.doc_string.empty()) w.string_field(model_f::doc_string, m.doc_string);
    Writer g;
    const Graph& graph = m.graph;
    for (const auto& n : graph.nodes) {
        Writer nw;
        for (const auto& i : n.inputs) nw.string_field(node_f::input, i);
        for (const auto& o : n.outputs) nw.string_field(node_f::output, o);
        if (!n.name.empty()) nw.string_field(node_f::name, n.name);
        nw.string_field(node_f::op_type, n.op_type);
        if (!n.domain.empty()) nw.string_field(node_f::domain, n.domain);
        for (const auto& kv : n.attrs) {
            Writer aw;
            write_attribute(aw, kv.first, kv.second);
            nw.message_field(node_f::attribute, aw);
        }
        g.message_field(graph_f::node, nw);
    }
    g.string_field(graph_f::name, graph.name.empty() ? std::string("main_graph") : graph.name);
    for (const auto& kv : graph.initializers) {
        Writer tw;
        write_tensor(tw, kv.second, kv.first);
        g.message_field(graph_f::initializer, tw);
    }
    if (!graph.doc_string.empty()) g.string_field(graph_f::doc_string, graph.doc_string);
    for (const auto& vi : graph.inputs) {
        Writer vw;
        write_value_info(vw, vi);
        g.message_field(graph_f::input, vw);
    }
    for (const auto& vi : graph.outputs) {
        Writer vw;
        write_value_info(vw, vi);
        g.message_field(graph_f::output, vw);
    }
    for (const auto& vi : graph.value_info) {
        Writer vw;
        write_value_info(vw, vi);
        g.message_field(graph_f::value_info, vw);
    }
    w.message_field(model_f::graph, g);
    for (const auto& kv : m.metadata) {
        Writer e;
        e.string_field(1, kv.first);
        e.string_field(2, kv.second);
        w.message_field(model_f::metadata_props, e);
    }
    return w.out;
}

void save_onnx(const Model& model, const std::string& path) {
    std::string bytes = serialize_onnx(model);
    if (bytes.size() >= (size_t(2) << 30))
        fail(path, ": the model is over 2 GiB; ONNX needs external data for that, which yoloc does not write");
    write_file_atomic(path, bytes);
}

}  // namespace yoloc
