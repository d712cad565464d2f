// ONNX codec: real model round trip, the official checker as oracle, and bad files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "core/file.h"
#include "engine/cpu/executor.h"
#include "onnx/onnx_io.h"
#include "onnx/wire.h"
#include "test_util.h"

using namespace yoloc;

namespace {

std::string model_path() { return yoloc_test::shared_dir() + "/models/yolov8n_coco.onnx"; }

// Runs Debian's python3-onnx checker (full_check) on a file; "" when it passes.
std::string onnx_checker(const std::string& path) {
    if (std::system("/usr/bin/python3 -c 'import onnx' 2>/dev/null") != 0) return "SKIP";
    std::string cmd = "/usr/bin/python3 -c \"import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)\" '" +
                      path + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    int rc = pclose(p);
    return rc == 0 ? "" : (out.empty() ? "checker failed" : out);
}

Model tiny_model() {
    Model m;
    m.graph.inputs.push_back({"x", DType::Float32, {Dim{1, ""}, Dim{2, ""}}, true});
    m.graph.outputs.push_back({"y", DType::Float32, {Dim{1, ""}, Dim{2, ""}}, true});
    m.graph.initializers["b"] = Tensor::from_floats({1, 2}, {1.f, 2.f});
    Node n;
    n.name = "add";
    n.op_type = "Add";
    n.inputs = {"x", "b"};
    n.outputs = {"y"};
    m.graph.nodes.push_back(n);
    return m;
}

}  // namespace

TEST(Onnx, RoundTripKeepsEveryWeightBitForBit) {
    REQUIRE_SHARED();
    Model a = load_onnx(model_path());
    std::string dir = yoloc_test::scratch_dir("onnx_roundtrip");
    save_onnx(a, dir + "/rt.onnx");
    Model b = load_onnx(dir + "/rt.onnx");
    ASSERT_EQ(a.graph.initializers.size(), b.graph.initializers.size());
    for (const auto& kv : a.graph.initializers) {
        const Tensor& t = b.graph.initializers.at(kv.first);
        ASSERT_EQ(t.shape(), kv.second.shape()) << kv.first;
        ASSERT_EQ(0, std::memcmp(t.raw(), kv.second.raw(), t.nbytes())) << kv.first;
    }
    ASSERT_EQ(a.graph.nodes.size(), b.graph.nodes.size());
    EXPECT_EQ(b.opset(), 17);
}

TEST(Onnx, RoundTripGivesIdenticalOutputs) {
    REQUIRE_SHARED();
    Model a = load_onnx(model_path());
    std::string dir = yoloc_test::scratch_dir("onnx_roundtrip_out");
    save_onnx(a, dir + "/rt.onnx");
    Model b = load_onnx(dir + "/rt.onnx");
    Tensor x(DType::Float32, {1, 3, 640, 640});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float((i * 2654435761u) % 256) / 255.f;
    auto ea = make_executor(a, "fast"), eb = make_executor(b, "fast");
    Tensor ya = ea->run({{"images", x}}).at("output0");
    Tensor yb = eb->run({{"images", x}}).at("output0");
    ASSERT_EQ(ya.shape(), yb.shape());
    EXPECT_EQ(0, std::memcmp(ya.raw(), yb.raw(), ya.nbytes()));
}

TEST(Onnx, WrittenModelPassesTheOfficialChecker) {
    REQUIRE_SHARED();
    std::string dir = yoloc_test::scratch_dir("onnx_checker");
    save_onnx(load_onnx(model_path()), dir + "/rt.onnx");
    std::string r = onnx_checker(dir + "/rt.onnx");
    if (r == "SKIP") {
        if (yoloc_test::in_ci()) FAIL() << "python3-onnx is missing in CI";
        GTEST_SKIP() << "/usr/bin/python3 has no onnx module";
    }
    EXPECT_EQ(r, "");
}

TEST(Onnx, TruncatedFileGivesAClearError) {
    REQUIRE_SHARED();
    std::string bytes = read_file(model_path());
    std::string cut = bytes.substr(0, bytes.size() / 2);
    try {
        parse_onnx(cut, "half.onnx");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("half.onnx"), std::string::npos) << e.what();
    }
}

TEST(Onnx, RandomBytesGiveAClearError) {
    std::string junk;
    uint32_t s = 12345;
    for (int i = 0; i < 4096; ++i) {
        s = s * 1664525u + 1013904223u;
        junk.push_back(char(s >> 24));
    }
    EXPECT_THROW(parse_onnx(junk, "junk.onnx"), Error);
    EXPECT_THROW(parse_onnx("", "empty.onnx"), Error);
    EXPECT_THROW(load_onnx("/nonexistent/model.onnx"), Error);
}

TEST(Onnx, HugeClaimedInitializerIsRejectedWithoutAllocating) {
    // A tiny file whose initializer claims 10^12 floats.
    wire::Writer t;
    t.int_field(1, 1000000);
    t.int_field(1, 1000000);
    t.int_field(2, 1);
    t.string_field(8, "w");
    wire::Writer g;
    g.message_field(5, t);
    wire::Writer m;
    m.int_field(1, 8);
    wire::Writer op;
    op.int_field(2, 17);
    m.message_field(8, op);
    m.message_field(7, g);
    ASSERT_LT(m.out.size(), 128u);
    auto t0 = std::chrono::steady_clock::now();
    try {
        parse_onnx(m.out, "huge.onnx");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
}

TEST(Onnx, MissingInitializerIsNamed) {
    Model m = tiny_model();
    m.graph.initializers.clear();
    std::string bytes = serialize_onnx(m);
    try {
        parse_onnx(bytes, "missing.onnx");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
    }
}

TEST(Onnx, CycleIsDetected) {
    Model m = tiny_model();
    Node a;
    a.name = "n1";
    a.op_type = "Relu";
    a.inputs = {"v2"};
    a.outputs = {"v1"};
    Node b;
    b.name = "n2";
    b.op_type = "Relu";
    b.inputs = {"v1"};
    b.outputs = {"v2"};
    m.graph.nodes.push_back(a);
    m.graph.nodes.push_back(b);
    try {
        parse_onnx(serialize_onnx(m), "cycle.onnx");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
    }
}

TEST(Onnx, OutOfOrderNodesAreSorted) {
    Model m = tiny_model();
    Node r;
    r.name = "relu";
    r.op_type = "Relu";
    r.inputs = {"y"};
    r.outputs = {"z"};
    m.graph.nodes.insert(m.graph.nodes.begin(), r);
    m.graph.outputs[0].name = "z";
    Model b = parse_onnx(serialize_onnx(m), "unsorted.onnx");
    ASSERT_EQ(b.graph.nodes.size(), 2u);
    EXPECT_EQ(b.graph.nodes[0].op_type, "Add");
    EXPECT_EQ(b.graph.nodes[1].op_type, "Relu");
}

TEST(Onnx, ExternalDataIsRead) {
    std::string dir = yoloc_test::scratch_dir("onnx_external");
    float vals[2] = {3.5f, -1.25f};
    {
        std::ofstream f(dir + "/weights.bin", std::ios::binary);
        char pad[8] = {0};
        f.write(pad, 8);
        f.write(reinterpret_cast<const char*>(vals), sizeof vals);
    }
    // initializer 'b' [1,2] float with external_data location/offset/length
    wire::Writer t;
    t.int_field(1, 1);
    t.int_field(1, 2);
    t.int_field(2, 1);
    t.string_field(8, "b");
    auto kv = [&](const std::string& k, const std::string& v) {
        wire::Writer e;
        e.string_field(1, k);
        e.string_field(2, v);
        t.message_field(13, e);
    };
    kv("location", "weights.bin");
    kv("offset", "8");
    kv("length", "8");
    t.int_field(14, 1);
    // The graph is written by hand so the initializer can point at external data.
    wire::Writer g;
    {
        // node
        wire::Writer n;
        n.string_field(1, "x");
        n.string_field(1, "b");
        n.string_field(2, "y");
        n.string_field(3, "add");
        n.string_field(4, "Add");
        g.message_field(1, n);
        g.message_field(5, t);
        auto vi = [&](int field, const std::string& name) {
            wire::Writer v, ty, tt, sh, d1, d2;
            v.string_field(1, name);
            tt.int_field(1, 1);
            d1.int_field(1, 1);
            d2.int_field(1, 2);
            sh.message_field(1, d1);
            sh.message_field(1, d2);
            tt.message_field(2, sh);
            ty.message_field(1, tt);
            v.message_field(2, ty);
            g.message_field(field, v);
        };
        vi(11, "x");
        vi(12, "y");
    }
    wire::Writer mw;
    mw.int_field(1, 8);
    wire::Writer op;
    op.int_field(2, 17);
    mw.message_field(8, op);
    mw.message_field(7, g);
    write_file_atomic(dir + "/ext.onnx", mw.out);
    Model r = load_onnx(dir + "/ext.onnx");
    const Tensor* b = r.graph.find_initializer("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->data<float>()[0], 3.5f);
    EXPECT_EQ(b->data<float>()[1], -1.25f);
    // A location that escapes the folder is refused.
    std::string evil = mw.out;
    size_t at = evil.find("weights.bin");
    evil.replace(at, 11, "../x/w.bin1");
    EXPECT_THROW(parse_onnx(evil, dir + "/evil.onnx"), Error);
}

TEST(Onnx, UnsupportedOpIsNamedWhenRunning) {
    Model m = tiny_model();
    m.graph.nodes[0].op_type = "FancyOp";
    try {
        ReferenceExecutor ex(m);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("FancyOp"), std::string::npos) << e.what();
    }
}

TEST(Onnx, FuzzFindingsStayFixed) {
    // Every input the fuzzer once crashed on: now a yoloc::Error or a valid model.
    std::string dir = std::string(YOLOC_SOURCE_DIR) + "/tests/data/fuzz_regressions";
    int seen = 0;
    for (const auto& f : list_dir(dir)) {
        if (f.find("/onnx_") == std::string::npos) continue;
        ++seen;
        try {
            parse_onnx(read_file(f), f);
        } catch (const Error&) {
        }
    }
    EXPECT_GT(seen, 0);
}
