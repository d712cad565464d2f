// The environment variables table (core/env.h): every YOLOC_* variable the sources read is in
// it, with the file that reads it; docs/ENVIRONMENT.md shows the same table; `yoloc --help-env`
// prints it; a name outside it is refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "core/env.h"
#include "core/error.h"
#include "core/file.h"
#include "test_util.h"

using namespace yoloc;

namespace {

// (variable, file relative to the source root) for every getenv("YOLOC_...") or
// env_get("YOLOC_...") in src/ and tools/.
std::set<std::pair<std::string, std::string>> reads_in_sources() {
    namespace fs = std::filesystem;
    const std::string root = YOLOC_SOURCE_DIR;
    const std::regex read(R"re((getenv|env_get)\s*\(\s*"(YOLOC_[A-Za-z0-9_]*)")re");
    std::set<std::pair<std::string, std::string>> out;
    for (const char* top : {"src", "tools"}) {
        for (const auto& e : fs::recursive_directory_iterator(root + "/" + top)) {
            const std::string ext = e.path().extension().string();
            if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h" && ext != ".cu" && ext != ".cuh")) continue;
            const std::string text = read_file(e.path().string());
            const std::string rel = fs::relative(e.path(), root).generic_string();
            for (std::sregex_iterator m(text.begin(), text.end(), read), end; m != end; ++m)
                out.insert({(*m)[2].str(), rel});
        }
    }
    return out;
}

std::map<std::string, const EnvVar*> table_by_name() {
    std::map<std::string, const EnvVar*> t;
    for (const auto& v : env_table()) t[v.name] = &v;
    return t;
}

}  // namespace

TEST(EnvTable, EveryVariableTheSourcesReadIsListedWithItsReader) {
    const auto reads = reads_in_sources();
    const auto table = table_by_name();
    ASSERT_GT(reads.size(), 10u) << "the scan of src/ and tools/ found almost nothing: is the source tree there?";
    std::set<std::string> read_names;
    for (const auto& r : reads) {
        read_names.insert(r.first);
        auto it = table.find(r.first);
        if (it == table.end()) {
            ADD_FAILURE() << r.second << " reads " << r.first << ", which env_table() (src/core/env.cpp) lacks";
            continue;
        }
        EXPECT_EQ(r.second, it->second->read_by) << r.first << " is read in " << r.second;
    }
    for (const auto& v : env_table())
        EXPECT_TRUE(read_names.count(v.name)) << v.name << " is in env_table() but no source file reads it";
    std::printf("%zu variables, %zu reads in src/ and tools/\n", env_table().size(), reads.size());
}

TEST(EnvTable, EveryRowIsComplete) {
    std::set<std::string> names;
    for (const auto& v : env_table()) {
        SCOPED_TRACE(v.name);
        EXPECT_EQ(std::strncmp(v.name, "YOLOC_", 6), 0);
        EXPECT_TRUE(names.insert(v.name).second) << "listed twice";
        const std::set<std::string> kinds = {"user", "diagnostic", "experiment", "test"};
        EXPECT_TRUE(kinds.count(v.kind)) << v.kind;
        EXPECT_GT(std::strlen(v.fallback), 0u);
        EXPECT_GT(std::strlen(v.effect), 0u);
        EXPECT_TRUE(file_exists(std::string(YOLOC_SOURCE_DIR) + "/" + v.read_by)) << v.read_by;
        for (const char* f : {v.fallback, v.effect, v.read_by})
            EXPECT_EQ(std::strchr(f, '|'), nullptr) << "'|' would break the Markdown table: " << f;
    }
}

// docs/ENVIRONMENT.md holds env_table_markdown() between its two markers.
TEST(EnvTable, DocsShowTheSameTable) {
    const std::string doc = read_file(std::string(YOLOC_SOURCE_DIR) + "/docs/ENVIRONMENT.md");
    const std::string begin = "<!-- env_table_markdown() begin -->\n", end = "<!-- env_table_markdown() end -->";
    const size_t b = doc.find(begin), e = doc.find(end);
    ASSERT_NE(b, std::string::npos) << "docs/ENVIRONMENT.md lacks the line " << begin;
    ASSERT_NE(e, std::string::npos) << "docs/ENVIRONMENT.md lacks the line " << end;
    ASSERT_LT(b, e);
    EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), env_table_markdown())
        << "docs/ENVIRONMENT.md is out of date: put this between its markers:\n"
        << env_table_markdown();
}

TEST(EnvTable, ANameOutsideTheTableIsRefused) {
    try {
        env_get("YOLOC_NOT_A_VARIABLE");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("YOLOC_NOT_A_VARIABLE"), std::string::npos) << e.what();
    }
    ::setenv("YOLOC_TEST_WRITE_DELAY_MS", "7", 1);
    const char* v = env_get("YOLOC_TEST_WRITE_DELAY_MS");
    ASSERT_NE(v, nullptr);
    EXPECT_STREQ(v, "7");
    ::unsetenv("YOLOC_TEST_WRITE_DELAY_MS");
    EXPECT_EQ(env_get("YOLOC_TEST_WRITE_DELAY_MS"), nullptr);
}

TEST(EnvTable, HelpEnvPrintsTheTable) {
    const auto r = yoloc_test::run_cli("--help-env");
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out, env_table_text());
    for (const auto& v : env_table()) EXPECT_NE(r.out.find(v.name), std::string::npos) << v.name;
    const auto h = yoloc_test::run_cli("--help");
    EXPECT_NE(h.out.find("--help-env"), std::string::npos) << h.out;
}
