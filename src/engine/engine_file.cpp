#include "engine/engine_file.h"

#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/file.h"

#ifndef YOLOC_VERSION
#define YOLOC_VERSION "unknown"
#endif

namespace yoloc {
namespace engine {

namespace {

const char kMagic[8] = {'Y', 'O', 'L', 'O', 'C', 'E', 'N', 'G'};
constexpr size_t kHeader = 8 + 4 + 8;
constexpr size_t kTrailer = 8;

static_assert(sizeof(float) == 4, "float must be IEEE single precision");

// Little-endian writer; the byte order is fixed so that files move between hosts.
class Writer {
public:
    void u8(uint8_t v) { s_.push_back(char(v)); }
    void u32(uint32_t v) {
        for (int i = 0; i < 4; ++i) s_.push_back(char((v >> (8 * i)) & 0xff));
    }
    void u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) s_.push_back(char((v >> (8 * i)) & 0xff));
    }
    void i32(int32_t v) { u32(uint32_t(v)); }
    void i64(int64_t v) { u64(uint64_t(v)); }
    void str(const std::string& v) {
        u32(uint32_t(v.size()));
        s_ += v;
    }
    void shape(const Shape& s) {
        u32(uint32_t(s.size()));
        for (int64_t d : s) i64(d);
    }
    void floats(const std::vector<float>& v) {
        u64(v.size());
        for (float f : v) {
            uint32_t b;
            std::memcpy(&b, &f, 4);
            u32(b);
        }
    }
    std::string& bytes() { return s_; }

private:
    std::string s_;
};

// Bounds-checked reader: every read says what it was reading when the data ends.
class Reader {
public:
    Reader(const std::string& s, size_t pos, size_t end, const std::string& path)
        : s_(s), pos_(pos), end_(end), path_(path) {}
    void need(size_t n, const char* what) {
        if (n > end_ - pos_) fail(path_, ": engine file is corrupt (ends inside ", what, "): rebuild it");
    }
    uint8_t u8(const char* what) {
        need(1, what);
        return uint8_t(s_[pos_++]);
    }
    uint32_t u32(const char* what) {
        need(4, what);
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(s_[pos_ + size_t(i)])) << (8 * i);
        pos_ += 4;
        return v;
    }
    uint64_t u64(const char* what) {
        need(8, what);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(s_[pos_ + size_t(i)])) << (8 * i);
        pos_ += 8;
        return v;
    }
    int32_t i32(const char* what) { return int32_t(u32(what)); }
    int64_t i64(const char* what) { return int64_t(u64(what)); }
    std::string str(const char* what) {
        uint32_t n = u32(what);
        need(n, what);
        std::string v = s_.substr(pos_, n);
        pos_ += n;
        return v;
    }
    Shape shape(const char* what) {
        uint32_t r = u32(what);
        if (r > 8) fail(path_, ": engine file is corrupt (rank ", r, " in ", what, "): rebuild it");
        Shape s(r);
        for (auto& d : s) d = i64(what);
        return s;
    }
    std::vector<float> floats(const char* what) {
        uint64_t n = u64(what);
        if (n > (end_ - pos_) / 4) fail(path_, ": engine file is corrupt (ends inside ", what, "): rebuild it");
        std::vector<float> v(static_cast<size_t>(n));
        for (auto& f : v) {
            uint32_t b = u32(what);
            std::memcpy(&f, &b, 4);
        }
        return v;
    }
    // A signed field that must lie in [lo, hi]: bounded here, at the read, so that no
    // later arithmetic on it (view ends, weight ranges, window products) can overflow.
    int64_t bounded(int64_t v, int64_t lo, int64_t hi, const char* what) {
        if (v < lo || v > hi)
            fail(path_, ": engine file is corrupt (", what, " ", v, " outside ", lo, "..", hi, "): rebuild it");
        return v;
    }
    int32_t i32_in(const char* what, int32_t lo, int32_t hi) { return int32_t(bounded(i32(what), lo, hi, what)); }
    int64_t i64_in(const char* what, int64_t lo, int64_t hi) { return bounded(i64(what), lo, hi, what); }
    uint32_t count(const char* what, uint32_t limit) {
        uint32_t n = u32(what);
        if (n > limit) fail(path_, ": engine file is corrupt (", n, " ", what, "): rebuild it");
        return n;
    }
    bool at_end() const { return pos_ == end_; }

private:
    const std::string& s_;
    size_t pos_, end_;
    const std::string& path_;
};

uint32_t f32_bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}
float bits_f32(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

void write_view(Writer& w, const View& v) {
    w.i32(v.buf);
    w.i64(v.c_off);
    w.i64(v.c);
}
// Plan dims are below 2^24 (Plan::validate); windows, factors and strides of YOLOv8
// layers are small. These bounds keep every product of them inside int64.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int32_t kMaxWindow = 64;
constexpr int64_t kMaxWeights = int64_t(1) << 40;

View read_view(Reader& r) {
    View v;
    v.buf = r.i32("view");
    v.c_off = r.i64_in("view channel offset", 0, kMaxDim);
    v.c = r.i64_in("view channels", 0, kMaxDim);
    return v;
}

// Consistency of shapes between the ops and their buffers, beyond Plan::validate:
// what a kernel indexes with must agree with what was allocated for it, so that a
// crafted engine file cannot make a kernel read or write outside a buffer.
void check_geometry(const Plan& p) {
    auto buf = [&](const View& v) -> const PlanBuffer& { return p.buffers[size_t(v.buf)]; };
    const int64_t n = p.input_shape[0];
    YOLOC_CHECK(n == p.batch, "batch ", p.batch, " but the input has ", n, " images");
    for (const auto& b : p.buffers)  // generic tensors (constants, reductions) need not hold one row per image
        YOLOC_CHECK(b.kind == BufferKind::Tensor || b.shape[0] == n, "buffer ", b.name, " holds ", b.shape[0],
                    " images, the batch is ", n);
    for (const auto& op : p.ops) {
        switch (op.kind) {
            case OpKind::InputPack: {
                const Shape& o = buf(op.out).shape;  // [N,H,W,C]
                const Shape& i = buf(op.in[0]).shape;  // [N,C,H,W]: the graph input or a generic tensor
                YOLOC_CHECK(i.size() == 4 && o[0] == i[0] && o[1] == i[2] && o[2] == i[3] && op.out.c == i[1],
                            "op ", op.name, " does not match its input's shape");
                break;
            }
            case OpKind::Generic:
                break;  // Plan::validate bounds every index a generic op forms
            case OpKind::Conv:
            case OpKind::MaxPool: {
                Shape i = buf(op.in[0]).shape;
                if (buf(op.in[0]).kind == BufferKind::Input) i = {i[0], i[2], i[3], i[1]};  // the stem reads NCHW
                const Shape& o = buf(op.out).shape;
                // Every output window starts inside the (top/left padded) input.
                YOLOC_CHECK((o[1] - 1) * op.sh - op.ph < i[1] && (o[2] - 1) * op.sw - op.pw < i[2],
                            "op ", op.name, " writes ", o[1], "x", o[2], " from ", i[1], "x", i[2]);
                if (op.kind == OpKind::Conv && op.in.size() == 2) {
                    const Shape& r = buf(op.in[1]).shape;
                    YOLOC_CHECK(r[1] == o[1] && r[2] == o[2], "op ", op.name, " adds a residual of another size");
                }
                for (const auto& v : op.more_out) {
                    const Shape& m = buf(v).shape;
                    YOLOC_CHECK(m[1] == o[1] && m[2] == o[2], "op ", op.name, " chains pools of different sizes");
                }
                break;
            }
            case OpKind::Copy:
            case OpKind::FakeQuant: {
                const Shape& i = buf(op.in[0]).shape;
                const Shape& o = buf(op.out).shape;
                YOLOC_CHECK(i[1] == o[1] && i[2] == o[2], "op ", op.name, " copies between sizes");
                break;
            }
            case OpKind::Resize: {
                const Shape& i = buf(op.in[0]).shape;
                const Shape& o = buf(op.out).shape;
                YOLOC_CHECK(o[1] == i[1] * op.fy && o[2] == i[2] * op.fx, "op ", op.name, " resizes ", i[1], "x",
                            i[2], " by ", op.fy, "x", op.fx, " into ", o[1], "x", o[2]);
                break;
            }
            case OpKind::Detect: {
                const Shape& o = buf(op.out).shape;
                int64_t anchors = 0;
                for (const auto& v : op.in) anchors += buf(v).shape[1] * buf(v).shape[2];
                YOLOC_CHECK(o.size() == 3 && o[1] == 4 + int64_t(op.nc) && o[2] == anchors,
                            "op ", op.name, " writes [", n, ", ", 4 + int64_t(op.nc), ", ", anchors, "] into ",
                            shape_str(o));
                break;
            }
            case OpKind::OutputUnpack: {
                const Shape& i = buf(op.in[0]).shape;
                const PlanBuffer& o = buf(op.out);
                YOLOC_CHECK(shape_numel(o.shape) == n * i[1] * i[2] * op.in[0].c,
                            "op ", op.name, " unpacks ", op.in[0].c, " channels of ", i[1], "x", i[2], " into ",
                            shape_str(o.shape));
                break;
            }
        }
    }
}

std::string rebuild_hint() { return "rebuild the engine on this device with `yoloc build`"; }

}  // namespace

std::string yoloc_version() { return YOLOC_VERSION; }

uint64_t fnv1a64(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

std::string serialize_engine(const EngineFile& e) {
    const Plan& p = e.plan;
    Writer w;
    // Metadata first: a reader can report what an engine is for without the rest.
    w.str(e.info.yoloc_version);
    w.str(e.info.device.gpu_name);
    w.i32(e.info.device.cc_major);
    w.i32(e.info.device.cc_minor);
    w.i32(e.info.device.cuda_runtime);
    w.i32(e.info.device.cudnn);
    w.str(e.info.source_model);
    w.str(e.info.created);
    w.i32(int32_t(p.precision));
    w.i64(p.batch);
    w.str(p.input_name);
    w.shape(p.input_shape);
    w.u32(uint32_t(p.output_names.size()));
    for (size_t i = 0; i < p.output_names.size(); ++i) {
        w.str(p.output_names[i]);
        w.shape(p.output_shapes[i]);
        w.i32(p.output_bufs[i]);
    }
    w.i32(p.input_buf);
    w.u32(uint32_t(p.buffers.size()));
    for (const auto& b : p.buffers) {
        w.str(b.name);
        w.i32(int32_t(b.kind));
        w.shape(b.shape);
        w.i32(b.elem_bytes);
        w.u8(b.integer ? 1 : 0);
    }
    w.u32(uint32_t(p.ops.size()));
    for (const auto& op : p.ops) {
        w.i32(int32_t(op.kind));
        w.str(op.name);
        w.u32(uint32_t(op.in.size()));
        for (const auto& v : op.in) write_view(w, v);
        write_view(w, op.out);
        for (int32_t x : {op.kh, op.kw, op.sh, op.sw, op.ph, op.pw, op.group}) w.i32(x);
        w.u8(op.silu ? 1 : 0);
        w.i64(op.w_off);
        w.i64(op.w_count);
        w.i64(op.b_off);
        w.i64(op.b_count);
        w.i32(op.fy);
        w.i32(op.fx);
        w.i32(op.reg_max);
        w.i32(op.nc);
        w.u32(uint32_t(op.strides.size()));
        for (int32_t s : op.strides) w.i32(s);
        w.u32(uint32_t(op.more_out.size()));
        for (const auto& v : op.more_out) write_view(w, v);
        w.i32(op.tactic);
        w.u32(f32_bits(op.in_scale));
        w.u32(f32_bits(op.res_scale));
        w.i64(op.s_off);
        w.i64(op.s_count);
        w.i64(op.ys_off);
        w.i64(op.ys_count);
        w.i32(op.gop);
        w.i32(op.sub);
        w.u32(uint32_t(op.ints.size()));
        for (int64_t x : op.ints) w.i64(x);
        w.u32(uint32_t(op.floats.size()));
        for (float f : op.floats) w.u32(f32_bits(f));
        w.u8(op.xyxy ? 1 : 0);
    }
    const PlanStats& st = p.stats;
    for (int x : {st.convs, st.convs_silu, st.convs_residual, st.split_views, st.concat_inputs, st.concat_in_place,
                  st.copies, st.maxpools, st.resizes, st.detects, st.ir_nodes, st.maxpool_chains, st.convs_int8,
                  st.fake_quants, st.qdq_folded, st.convs_fused_siblings, st.int8_buffers, st.generic_ops,
                  st.layout_changes})
        w.i32(x);
    w.i32(int32_t(p.memory_mode));
    w.floats(p.weights);

    std::string payload = std::move(w.bytes());
    Writer out;
    for (char c : kMagic) out.u8(uint8_t(c));
    out.u32(e.info.format_version);
    out.u64(payload.size());
    std::string file = std::move(out.bytes());
    file += payload;
    Writer tr;
    tr.u64(fnv1a64(payload.data(), payload.size()));
    file += tr.bytes();
    return file;
}

EngineFile parse_engine(const std::string& bytes, const std::string& path) {
    if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0)
        fail(path, ": not a yoloc engine file (bad magic)");
    if (bytes.size() < kHeader) fail(path, ": engine file is truncated (", bytes.size(), " bytes): ", rebuild_hint());
    Reader h(bytes, 8, kHeader, path);
    EngineFile e;
    e.info.format_version = h.u32("format version");
    if (e.info.format_version != kEngineFormatVersion)
        fail(path, ": engine format version ", e.info.format_version, ", this yoloc reads version ",
             kEngineFormatVersion, ": ", rebuild_hint());
    uint64_t n = h.u64("payload size");
    if (n > bytes.size() || bytes.size() - kHeader - kTrailer != n) {
        if (bytes.size() < kHeader + kTrailer || n > bytes.size() - kHeader - kTrailer)
            fail(path, ": engine file is truncated (", bytes.size(), " bytes, expected ", n + kHeader + kTrailer,
                 "): ", rebuild_hint());
        fail(path, ": engine file has ", bytes.size() - kHeader - kTrailer - n, " unexpected trailing bytes: ",
             rebuild_hint());
    }
    Reader t(bytes, kHeader + size_t(n), bytes.size(), path);
    uint64_t want = t.u64("checksum");
    uint64_t got = fnv1a64(bytes.data() + kHeader, size_t(n));
    if (want != got) fail(path, ": engine file is corrupt (checksum mismatch): ", rebuild_hint());

    Reader r(bytes, kHeader, kHeader + size_t(n), path);
    e.info.yoloc_version = r.str("yoloc version");
    if (e.info.yoloc_version != yoloc_version())
        fail(path, ": engine was built by yoloc ", e.info.yoloc_version, ", this is yoloc ", yoloc_version(), ": ",
             rebuild_hint());
    e.info.device.gpu_name = r.str("gpu name");
    e.info.device.cc_major = r.i32("compute capability");
    e.info.device.cc_minor = r.i32("compute capability");
    e.info.device.cuda_runtime = r.i32("cuda version");
    e.info.device.cudnn = r.i32("cudnn version");
    e.info.source_model = r.str("source model");
    e.info.created = r.str("date");
    Plan& p = e.plan;
    int32_t prec = r.i32("precision");
    if (prec != int32_t(Precision::FP32) && prec != int32_t(Precision::FP16) && prec != int32_t(Precision::INT8))
        fail(path, ": engine file is corrupt (precision ", prec, "): ", rebuild_hint());
    p.precision = Precision(prec);
    p.batch = r.i64_in("batch", 1, kMaxDim);
    p.input_name = r.str("input name");
    p.input_shape = r.shape("input shape");
    uint32_t no = r.count("outputs", 64);
    for (uint32_t i = 0; i < no; ++i) {
        p.output_names.push_back(r.str("output name"));
        p.output_shapes.push_back(r.shape("output shape"));
        p.output_bufs.push_back(r.i32("output buffer"));
    }
    p.input_buf = r.i32("input buffer");
    uint32_t nb = r.count("buffers", 1u << 14);  // YOLOv8x has a few hundred; memory planning is quadratic
    for (uint32_t i = 0; i < nb; ++i) {
        PlanBuffer b;
        b.name = r.str("buffer name");
        int32_t k = r.i32("buffer kind");
        if (k < 0 || k > int32_t(BufferKind::Tensor))
            fail(path, ": engine file is corrupt (buffer kind ", k, "): ", rebuild_hint());
        b.kind = BufferKind(k);
        b.shape = r.shape("buffer shape");
        b.elem_bytes = r.i32_in("buffer element size", 1, 4);
        b.integer = r.u8("buffer type") != 0;
        p.buffers.push_back(b);
    }
    uint32_t nops = r.count("ops", 1u << 14);
    for (uint32_t i = 0; i < nops; ++i) {
        PlanOp op;
        int32_t k = r.i32("op kind");
        if (k < 0 || k > int32_t(OpKind::Generic))
            fail(path, ": engine file is corrupt (op kind ", k, "): ", rebuild_hint());
        op.kind = OpKind(k);
        op.name = r.str("op name");
        uint32_t ni = r.count("op inputs", 64);
        for (uint32_t j = 0; j < ni; ++j) op.in.push_back(read_view(r));
        op.out = read_view(r);
        for (int32_t* x : {&op.kh, &op.kw, &op.sh, &op.sw, &op.ph, &op.pw}) *x = r.i32_in("op window", 0, kMaxWindow);
        op.group = r.i32_in("op groups", 0, int32_t(kMaxDim));
        op.silu = r.u8("op activation") != 0;
        op.w_off = r.i64_in("op weights", -1, kMaxWeights);
        op.w_count = r.i64_in("op weights", 0, kMaxWeights);
        op.b_off = r.i64_in("op bias", -1, kMaxWeights);
        op.b_count = r.i64_in("op bias", 0, kMaxWeights);
        op.fy = r.i32_in("op factors", 0, kMaxWindow);
        op.fx = r.i32_in("op factors", 0, kMaxWindow);
        op.reg_max = r.i32_in("op reg_max", 0, 1 << 16);
        op.nc = r.i32_in("op classes", 0, 1 << 20);
        uint32_t ns = r.count("op strides", 64);
        for (uint32_t j = 0; j < ns; ++j) op.strides.push_back(r.i32_in("op strides", 1, 1 << 16));
        uint32_t nm = r.count("op extra outputs", 8);
        for (uint32_t j = 0; j < nm; ++j) op.more_out.push_back(read_view(r));
        op.tactic = r.i32("op tactic");
        op.in_scale = bits_f32(r.u32("op input scale"));
        op.res_scale = bits_f32(r.u32("op residual scale"));
        op.s_off = r.i64_in("op weight scales", -1, kMaxWeights);
        op.s_count = r.i64_in("op weight scales", 0, kMaxWeights);
        op.ys_off = r.i64_in("op output scales", -1, kMaxWeights);
        op.ys_count = r.i64_in("op output scales", 0, kMaxWeights);
        op.gop = r.i32_in("generic op", 0, 64);
        op.sub = r.i32_in("generic sub-op", 0, 1 << 16);
        const uint32_t ni2 = r.count("generic parameters", 64);
        for (uint32_t j = 0; j < ni2; ++j) op.ints.push_back(r.i64_in("generic parameter", -kMaxWeights, kMaxWeights));
        const uint32_t nf = r.count("generic float parameters", 8);
        for (uint32_t j = 0; j < nf; ++j) op.floats.push_back(bits_f32(r.u32("generic float parameter")));
        op.xyxy = r.u8("detect box format") != 0;
        p.ops.push_back(op);
    }
    PlanStats& st = p.stats;
    for (int* x : {&st.convs, &st.convs_silu, &st.convs_residual, &st.split_views, &st.concat_inputs,
                   &st.concat_in_place, &st.copies, &st.maxpools, &st.resizes, &st.detects, &st.ir_nodes,
                   &st.maxpool_chains, &st.convs_int8, &st.fake_quants, &st.qdq_folded, &st.convs_fused_siblings,
                   &st.int8_buffers, &st.generic_ops, &st.layout_changes})
        *x = r.i32("stats");
    const int32_t mm = r.i32("memory mode");
    if (mm != int32_t(Plan::MemoryMode::Sequential) && mm != int32_t(Plan::MemoryMode::Concurrent) &&
        mm != int32_t(Plan::MemoryMode::Bounded))
        fail(path, ": engine file is corrupt (memory mode ", mm, "): ", rebuild_hint());
    p.memory_mode = Plan::MemoryMode(mm);
    p.weights = r.floats("weights");
    if (!r.at_end()) fail(path, ": engine file is corrupt (unexpected bytes after the weights): ", rebuild_hint());
    try {
        p.validate();
        check_geometry(p);
    } catch (const Error& err) {
        fail(path, ": engine file is inconsistent (", err.what(), "): ", rebuild_hint());
    }
    return e;
}

void write_engine(const std::string& path, const EngineFile& e) { write_file_atomic(path, serialize_engine(e)); }

EngineFile read_engine(const std::string& path) { return parse_engine(read_file(path), path); }

void check_engine_device(const EngineInfo& info, const DeviceIdentity& here, const std::string& path) {
    if (info.device.cc_major != here.cc_major || info.device.cc_minor != here.cc_minor)
        fail(path, ": engine was built for compute capability ", info.device.cc_major, ".", info.device.cc_minor,
             " (", info.device.gpu_name, "), this GPU is ", here.cc_major, ".", here.cc_minor, " (", here.gpu_name,
             "): ", rebuild_hint());
    // Kernels are compiled into yoloc itself, so a CUDA minor update is harmless; a
    // major one changes the driver contract.
    if (info.device.cuda_runtime / 1000 != here.cuda_runtime / 1000)
        fail(path, ": engine was built with CUDA ", info.device.cuda_runtime / 1000, ".",
             (info.device.cuda_runtime % 1000) / 10, ", this yoloc runs CUDA ", here.cuda_runtime / 1000, ".",
             (here.cuda_runtime % 1000) / 10, ": ", rebuild_hint());
    // cudnn != 0: some layers run cuDNN plans, chosen from this cuDNN version's list.
    if (info.device.cudnn != 0 && info.device.cudnn != here.cudnn)
        fail(path, ": engine was built with cuDNN ", info.device.cudnn, ", this yoloc runs ",
             here.cudnn ? "cuDNN " + std::to_string(here.cudnn) : std::string("without cuDNN"), ": ", rebuild_hint());
}

}  // namespace engine
}  // namespace yoloc
