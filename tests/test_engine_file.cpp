// Engine file: round trip and every way a file can be wrong must fail cleanly,
// before anything reaches a GPU.
#include <gtest/gtest.h>

#include <fstream>

#include "core/file.h"
#include "engine/engine_file.h"
#include "gpu/models.h"
#include "test_util.h"

using namespace yoloc;
using namespace yoloc::engine;

namespace {

DeviceIdentity h100() {
    DeviceIdentity d;
    d.gpu_name = "NVIDIA H100 80GB HBM3";
    d.cc_major = 9;
    d.cc_minor = 0;
    d.cuda_runtime = 13000;
    return d;
}

EngineFile tiny_engine(Precision prec = Precision::FP16) {
    EngineFile e;
    PlanOptions o;
    o.precision = prec;
    e.plan = build_plan(yoloc_test::tiny_engine_model(2), o);
    e.info.yoloc_version = yoloc_version();
    e.info.device = h100();
    e.info.source_model = "tiny";
    e.info.created = "2026-11-25T00:00:00Z";
    return e;
}

std::string error_of(const std::string& bytes) {
    try {
        parse_engine(bytes, "x.engine");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool has(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

}  // namespace

TEST(EngineFile, RoundTripKeepsEverything) {
    EngineFile e = tiny_engine();
    e.plan.memory_mode = Plan::MemoryMode::Sequential;  // not the default: must survive the file
    std::string dir = yoloc_test::scratch_dir("engine_file");
    std::string path = dir + "/tiny.engine";
    write_engine(path, e);
    EngineFile r = read_engine(path);
    EXPECT_EQ(r.plan.memory_mode, Plan::MemoryMode::Sequential);
    EXPECT_EQ(r.info.yoloc_version, e.info.yoloc_version);
    EXPECT_EQ(r.info.device.gpu_name, e.info.device.gpu_name);
    EXPECT_EQ(r.info.device.cc_major, 9);
    EXPECT_EQ(r.info.device.cuda_runtime, 13000);
    EXPECT_EQ(r.plan.precision, Precision::FP16);
    EXPECT_EQ(r.plan.batch, 2);
    EXPECT_EQ(r.plan.input_name, "x");
    EXPECT_EQ(r.plan.input_shape, e.plan.input_shape);
    EXPECT_EQ(r.plan.output_names, e.plan.output_names);
    EXPECT_EQ(r.plan.output_shapes, e.plan.output_shapes);
    EXPECT_EQ(r.plan.weights, e.plan.weights);
    ASSERT_EQ(r.plan.ops.size(), e.plan.ops.size());
    EXPECT_EQ(describe_plan(r.plan), describe_plan(e.plan));
    for (size_t i = 0; i < r.plan.ops.size(); ++i) {
        EXPECT_EQ(r.plan.ops[i].w_off, e.plan.ops[i].w_off);
        EXPECT_EQ(r.plan.ops[i].silu, e.plan.ops[i].silu);
        EXPECT_EQ(r.plan.ops[i].fy, e.plan.ops[i].fy);
    }
    EXPECT_EQ(r.plan.stats.copies, e.plan.stats.copies);
    // Serialising is deterministic: the same plan gives the same bytes.
    EXPECT_EQ(serialize_engine(r), serialize_engine(e));
    // No temporary file is left behind by the atomic write.
    EXPECT_EQ(list_dir(dir).size(), 1u);
}

TEST(EngineFile, TruncatedAtEveryEighthFailsCleanly) {
    std::string bytes = serialize_engine(tiny_engine());
    for (int k = 0; k < 8; ++k) {
        std::string cut = bytes.substr(0, bytes.size() * size_t(k) / 8);
        std::string err = error_of(cut);
        EXPECT_FALSE(err.empty()) << "cut at " << k << "/8 was accepted";
        EXPECT_TRUE(has(err, "truncated") || has(err, "bad magic")) << k << "/8: " << err;
    }
    // One byte short, too.
    EXPECT_TRUE(has(error_of(bytes.substr(0, bytes.size() - 1)), "truncated"));
    EXPECT_TRUE(has(error_of(bytes + "x"), "trailing"));
}

TEST(EngineFile, FlippedByteIsAChecksumError) {
    std::string bytes = serialize_engine(tiny_engine());
    for (size_t pos : {size_t(40), bytes.size() / 2, bytes.size() - 20}) {
        std::string bad = bytes;
        bad[pos] = char(bad[pos] ^ 0x10);
        std::string err = error_of(bad);
        EXPECT_TRUE(has(err, "checksum")) << pos << ": " << err;
        EXPECT_TRUE(has(err, "rebuild")) << err;
    }
}

TEST(EngineFile, NotAnEngine) {
    EXPECT_TRUE(has(error_of("hello world, this is not an engine file"), "bad magic"));
    EXPECT_TRUE(has(error_of(""), "bad magic"));
}

TEST(EngineFile, OtherFormatVersionSaysRebuild) {
    EngineFile e = tiny_engine();
    e.info.format_version = kEngineFormatVersion + 1;
    std::string err = error_of(serialize_engine(e));
    EXPECT_TRUE(has(err, "format version")) << err;
    EXPECT_TRUE(has(err, "rebuild the engine on this device")) << err;
}

TEST(EngineFile, OtherYolocVersionSaysRebuild) {
    EngineFile e = tiny_engine();
    e.info.yoloc_version = "0.0.0-other";
    std::string err = error_of(serialize_engine(e));
    EXPECT_TRUE(has(err, "0.0.0-other")) << err;
    EXPECT_TRUE(has(err, "rebuild the engine on this device")) << err;
}

TEST(EngineFile, OtherComputeCapabilityOrCudaSaysRebuild) {
    EngineFile e = parse_engine(serialize_engine(tiny_engine()), "x.engine");
    EXPECT_NO_THROW(check_engine_device(e.info, h100(), "x.engine"));
    DeviceIdentity orin = h100();
    orin.gpu_name = "Orin";
    orin.cc_major = 8;
    orin.cc_minor = 7;
    try {
        check_engine_device(e.info, orin, "x.engine");
        FAIL() << "accepted an engine for another compute capability";
    } catch (const Error& err) {
        std::string w = err.what();
        EXPECT_TRUE(has(w, "9.0") && has(w, "8.7")) << w;
        EXPECT_TRUE(has(w, "rebuild the engine on this device")) << w;
    }
    DeviceIdentity cuda12 = h100();
    cuda12.cuda_runtime = 12080;
    try {
        check_engine_device(e.info, cuda12, "x.engine");
        FAIL() << "accepted an engine for another CUDA major version";
    } catch (const Error& err) {
        EXPECT_TRUE(has(err.what(), "rebuild")) << err.what();
    }
    DeviceIdentity cuda13_1 = h100();
    cuda13_1.cuda_runtime = 13010;  // a minor update keeps engines valid
    EXPECT_NO_THROW(check_engine_device(e.info, cuda13_1, "x.engine"));
}

TEST(EngineFile, CudnnVersionCountsOnlyForEnginesThatUseCudnn) {
    // An engine without cuDNN layers (cudnn 0) loads with any cuDNN or none; one whose
    // layers run cuDNN plans needs the same cuDNN version (its heuristic list).
    EngineFile e = parse_engine(serialize_engine(tiny_engine()), "x.engine");
    e.info.device.cudnn = 0;
    DeviceIdentity here = h100();
    here.cudnn = 91400;
    EXPECT_NO_THROW(check_engine_device(e.info, here, "x.engine"));
    e.info.device.cudnn = 91400;
    EngineFile back = parse_engine(serialize_engine(e), "x.engine");
    EXPECT_EQ(back.info.device.cudnn, 91400);
    EXPECT_NO_THROW(check_engine_device(back.info, here, "x.engine"));
    DeviceIdentity other = here;
    other.cudnn = 91900;
    DeviceIdentity none = here;
    none.cudnn = 0;
    for (const DeviceIdentity& d : {other, none}) {
        try {
            check_engine_device(back.info, d, "x.engine");
            FAIL() << "accepted a cuDNN engine under cuDNN " << d.cudnn;
        } catch (const Error& err) {
            std::string w = err.what();
            EXPECT_TRUE(has(w, "cuDNN 91400") && has(w, "rebuild the engine on this device")) << w;
        }
    }
}

TEST(EngineFile, InconsistentPlanWithValidChecksumIsRejected) {
    // A file whose checksum is right but whose plan is wrong (a buggy writer) must
    // still be refused before any kernel would index out of bounds.
    EngineFile e = tiny_engine();
    e.plan.ops[1].w_off = int64_t(e.plan.weights.size());
    std::string err = error_of(serialize_engine(e));
    EXPECT_TRUE(has(err, "inconsistent")) << err;
}

TEST(EngineFile, Fnv1a64KnownValues) {
    EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
    EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
}
