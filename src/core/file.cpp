#include "core/file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace yoloc {

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

void write_file_atomic(const std::string& path, const std::string& data) {
    // Same folder as the target so rename() is atomic (same filesystem).
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail(path, ": cannot write (", std::strerror(errno), "); check the folder exists and is writable");
    size_t n = data.empty() ? 0 : std::fwrite(data.data(), 1, data.size(), f);
    bool ok = n == data.size();
    ok = (std::fflush(f) == 0) && ok;
    ok = (::fsync(fileno(f)) == 0 || errno == EINVAL) && ok;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        fail(path, ": write failed (disk full?)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        std::remove(tmp.c_str());
        fail(path, ": cannot replace (", std::strerror(e), ")");
    }
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
