#include <gtest/gtest.h>

#include <string>

#include "core/sha256.h"

using yoloc::sha256_hex;

TEST(Sha256, EmptyInputMatchesFipsVector) {
    EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, AbcMatchesFipsVector) {
    EXPECT_EQ(sha256_hex(std::string("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessageMatchesFipsVector) {
    EXPECT_EQ(sha256_hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAMatchesFipsVector) {
    EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesEqualOneShot) {
    std::string msg;
    for (int i = 0; i < 1000; ++i) msg += char('a' + i % 26);
    yoloc::Sha256 h;
    size_t pos = 0;
    for (size_t step : {1u, 63u, 64u, 65u, 7u, 300u}) {
        h.update(msg.data() + pos, step);
        pos += step;
    }
    h.update(msg.data() + pos, msg.size() - pos);
    EXPECT_EQ(h.hex_digest(), sha256_hex(msg));
}
