#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/npy.h"
#include "test_util.h"

using namespace yoloc;

namespace {

void write_bytes(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
}

// A v1 .npy file with the given header dict and `data_bytes` zero bytes of data.
std::string make_npy(const std::string& dict, size_t data_bytes, int version = 1) {
    std::string header = dict;
    const size_t prefix = version == 1 ? 10 : 12;
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out("\x93NUMPY", 6);
    out += char(version);
    out += char(0);
    out += char(header.size() & 0xff);
    out += char((header.size() >> 8) & 0xff);
    if (version == 2) {
        out += char(0);
        out += char(0);
    }
    return out + header + std::string(data_bytes, '\0');
}

template <typename F>
void expect_error_mentioning(F f, const std::string& needle) {
    try {
        f();
        FAIL() << "expected yoloc::Error mentioning " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Npy, SaveThenLoadRoundTripsShapeAndValues) {
    const std::string dir = yoloc_test::scratch_dir("npy_roundtrip");
    Tensor t = Tensor::from_floats({2, 3, 4}, std::vector<float>(24));
    float* p = t.data<float>();
    for (int i = 0; i < 24; ++i) p[i] = float(i) * 0.5f - 3.25f;
    save_npy(dir + "/t.npy", t);
    Tensor u = load_npy(dir + "/t.npy");
    ASSERT_EQ(u.shape(), (Shape{2, 3, 4}));
    for (int i = 0; i < 24; ++i) EXPECT_EQ(u.data<float>()[i], p[i]);
}

TEST(Npy, SavedHeaderIsNumpyV1AlignedTo64Bytes) {
    Tensor t = Tensor::from_floats({5}, {1, 2, 3, 4, 5});
    std::string bytes = encode_npy(t);
    ASSERT_GE(bytes.size(), 10u);
    EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY", 6));
    EXPECT_EQ(int(bytes[6]), 1);
    const size_t header_len = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
    EXPECT_EQ((10 + header_len) % 64, 0u);
    EXPECT_NE(bytes.find("'shape': (5,)"), std::string::npos);
    EXPECT_EQ(bytes.size(), 10 + header_len + 20);
}

TEST(Npy, SaveLeavesNoTemporaryFile) {
    const std::string dir = yoloc_test::scratch_dir("npy_atomic");
    save_npy(dir + "/a.npy", Tensor::from_floats({1}, {7.f}));
    EXPECT_TRUE(yoloc_test::path_exists(dir + "/a.npy"));
    EXPECT_FALSE(yoloc_test::path_exists(dir + "/a.npy.tmp"));
}

TEST(Npy, LoadsScalarShape) {
    const std::string dir = yoloc_test::scratch_dir("npy_scalar");
    save_npy(dir + "/s.npy", Tensor::scalar_f32(2.5f));
    Tensor s = load_npy(dir + "/s.npy");
    EXPECT_EQ(s.rank(), 0u);
    EXPECT_EQ(s.data<float>()[0], 2.5f);
}

TEST(Npy, LoadsVersion2Header) {
    const std::string dir = yoloc_test::scratch_dir("npy_v2");
    write_bytes(dir + "/v2.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 16, 2));
    Tensor t = load_npy(dir + "/v2.npy");
    EXPECT_EQ(t.shape(), (Shape{2, 2}));
}

TEST(Npy, LoadsReferenceModelOutput) {
    REQUIRE_SHARED();
    Tensor t = load_npy(yoloc_test::shared_dir() + "/data/reference/dog.npy");
    ASSERT_EQ(t.shape(), (Shape{84, 8400}));
    // Class rows hold sigmoid scores.
    const float* p = t.data<float>();
    for (int64_t i = 4 * 8400; i < t.numel(); ++i) ASSERT_TRUE(p[i] >= 0.f && p[i] <= 1.f);
}

TEST(Npy, RejectsWrongDtypeNamingTheFile) {
    const std::string path = yoloc_test::scratch_dir("npy_dtype") + "/f8.npy";
    write_bytes(path, make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16));
    expect_error_mentioning([&] { load_npy(path); }, path);
    expect_error_mentioning([&] { load_npy(path); }, "<f8");
}

TEST(Npy, RejectsFortranOrder) {
    const std::string path = yoloc_test::scratch_dir("npy_fortran") + "/f.npy";
    write_bytes(path, make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16));
    expect_error_mentioning([&] { load_npy(path); }, "Fortran");
}

TEST(Npy, RejectsDataSizeMismatch) {
    const std::string path = yoloc_test::scratch_dir("npy_size") + "/short.npy";
    write_bytes(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }", 12));
    expect_error_mentioning([&] { load_npy(path); }, path);
}

TEST(Npy, RejectsFileWithoutMagic) {
    const std::string path = yoloc_test::scratch_dir("npy_magic") + "/x.npy";
    write_bytes(path, "this is not a numpy file at all");
    expect_error_mentioning([&] { load_npy(path); }, "not an .npy");
}

TEST(Npy, MissingFileThrowsNamingIt) {
    const std::string path = yoloc_test::scratch_dir("npy_missing") + "/none.npy";
    expect_error_mentioning([&] { load_npy(path); }, path);
}

TEST(Npy, SaveRejectsNonFloatTensor) {
    const std::string dir = yoloc_test::scratch_dir("npy_int");
    EXPECT_THROW(save_npy(dir + "/i.npy", Tensor::from_int64s({2}, {1, 2})), Error);
}
