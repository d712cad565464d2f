#include "core/file.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include "core/error.h"

namespace yoloc {

namespace {

// Temporary files being written by write_file_atomic, so that SIGINT/SIGTERM/SIGHUP
// can remove them before the process dies (the target itself is only ever replaced
// by rename(), so it is the complete old file or the complete new one). Fixed slots
// of plain memory: the handler may only use async-signal-safe calls.
constexpr int kTempSlots = 64;
struct TempSlot {
    std::atomic<int> state{0};  // 0 free, 1 being filled, 2 live
    char path[PATH_MAX];
};
TempSlot g_temp[kTempSlots];
const int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

void remove_temps_and_reraise(int sig) {
    int saved = errno;
    for (auto& slot : g_temp)
        if (slot.state.load() == 2) ::unlink(slot.path);
    errno = saved;
    // SA_RESETHAND restored the default action: die of the same signal (exit status 128+sig).
    ::raise(sig);
}

// Installed on the first atomic write, only over the default action (a program that
// handles or ignores these signals itself keeps doing so).
void install_temp_cleanup() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : kCleanupSignals) {
            struct sigaction old;
            if (::sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
                continue;
            struct sigaction sa;
            std::memset(&sa, 0, sizeof sa);
            sa.sa_handler = remove_temps_and_reraise;
            sigemptyset(&sa.sa_mask);
            for (int other : kCleanupSignals) sigaddset(&sa.sa_mask, other);
            sa.sa_flags = SA_RESETHAND;
            ::sigaction(sig, &sa, nullptr);
        }
    });
}

// Registers a temporary file for removal on a signal; -1 when every slot is taken
// (the write still happens, only without the cleanup).
int register_temp(const std::string& tmp) {
    if (tmp.size() >= PATH_MAX) return -1;
    for (int i = 0; i < kTempSlots; ++i) {
        int expected = 0;
        if (g_temp[i].state.compare_exchange_strong(expected, 1)) {
            std::memcpy(g_temp[i].path, tmp.c_str(), tmp.size() + 1);
            g_temp[i].state.store(2);
            return i;
        }
    }
    return -1;
}

void unregister_temp(int slot) {
    if (slot >= 0) g_temp[slot].state.store(0);
}

}  // namespace

std::vector<std::string> pending_temp_files() {
    std::vector<std::string> out;
    for (auto& slot : g_temp)
        if (slot.state.load() == 2) out.push_back(slot.path);
    return out;
}

std::string read_file(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open (", std::strerror(errno), ")");
    if (S_ISDIR(st.st_mode)) fail(path, ": is a folder, expected a file");
    std::ifstream f(path, std::ios::binary);
    if (!f) fail(path, ": cannot open for reading");
    std::string data;
    data.resize(size_t(st.st_size));
    if (st.st_size > 0 && !f.read(&data[0], st.st_size)) fail(path, ": read failed");
    return data;
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void require_regular_file(const std::string& path, const std::string& what) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) fail(path, ": no such file; expected ", what);
        fail(path, ": cannot open (", std::strerror(errno), "); expected ", what);
    }
    if (S_ISDIR(st.st_mode)) fail(path, ": is a folder; expected ", what);
    if (!S_ISREG(st.st_mode)) fail(path, ": is not a regular file (a device, pipe or socket); expected ", what);
}

void write_file_atomic(const std::string& path, const std::string& data) {
    // Same folder as the target so rename() is atomic (same filesystem); unique per
    // process and call so that concurrent writers never share a temporary file.
    static std::atomic<unsigned> counter{0};
    std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    install_temp_cleanup();
    int slot = register_temp(tmp);  // before the file exists: a signal after fopen removes it
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        int e = errno;
        unregister_temp(slot);
        fail(path, ": cannot write (", std::strerror(e), "); check the folder exists and is writable");
    }
    size_t n = data.empty() ? 0 : std::fwrite(data.data(), 1, data.size(), f);
    bool ok = n == data.size();
    ok = (std::fflush(f) == 0) && ok;
    ok = (::fsync(fileno(f)) == 0 || errno == EINVAL) && ok;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        unregister_temp(slot);
        fail(path, ": write failed (disk full?)");
    }
    // Test hook: hold the complete temporary file this long before the rename, so that
    // tests can interrupt a write at its most exposed point (tests/test_reliability.cpp).
    if (const char* d = std::getenv("YOLOC_TEST_WRITE_DELAY_MS")) ::usleep(useconds_t(std::atoi(d)) * 1000u);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        unregister_temp(slot);
        fail(path, ": cannot replace (", std::strerror(e), ")");
    }
    unregister_temp(slot);
}

void make_dirs(const std::string& path) {
    if (path.empty() || is_directory(path)) return;
    std::string parent = path_dirname(path);
    if (parent != path && parent != "." && parent != "/") make_dirs(parent);
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        fail(path, ": cannot create folder (", std::strerror(errno), ")");
}

std::vector<std::string> list_dir(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) fail(dir, ": cannot open folder (", std::strerror(errno), ")");
    std::vector<std::string> out;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string p = path_join(dir, n);
        if (file_exists(p)) out.push_back(p);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::string path_stem(const std::string& path) {
    size_t s = path.find_last_of('/');
    std::string base = s == std::string::npos ? path : path.substr(s + 1);
    size_t dot = base.find_last_of('.');
    return (dot == std::string::npos || dot == 0) ? base : base.substr(0, dot);
}

std::string path_dirname(const std::string& path) {
    size_t s = path.find_last_of('/');
    if (s == std::string::npos) return ".";
    if (s == 0) return "/";
    return path.substr(0, s);
}

std::string path_join(const std::string& a, const std::string& b) {
    if (a.empty() || (!b.empty() && b[0] == '/')) return b;
    return a.back() == '/' ? a + b : a + "/" + b;
}

std::string path_ext_lower(const std::string& path) {
    size_t s = path.find_last_of('/');
    size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (s != std::string::npos && dot < s)) return "";
    std::string e = path.substr(dot);
    for (auto& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
    return e;
}

}  // namespace yoloc
