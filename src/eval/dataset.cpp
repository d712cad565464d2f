#include "eval/dataset.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/file.h"
#include "eval/yaml_lite.h"

namespace yoloc {

int64_t Dataset::instances() const {
    int64_t n = 0;
    for (const auto& im : images) n += int64_t(im.labels.size());
    return n;
}

namespace {

bool is_absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

std::string resolve(const std::string& base, const std::string& p) {
    if (is_absolute(p) || base.empty() || base == ".") return p;
    std::string q = p;
    while (q.compare(0, 2, "./") == 0) q = q.substr(2);
    if (q.empty() || q == ".") return base;
    return path_join(base, q);
}

bool parse_int(const std::string& s, long* out) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') return false;
    *out = v;
    return true;
}

std::vector<std::string> scalars_of(const YamlNode& n, const std::string& file, const std::string& key) {
    std::vector<std::string> out;
    if (n.is_scalar()) {
        out.push_back(n.scalar);
    } else if (n.is_list()) {
        for (const auto& e : n.list) {
            YOLOC_CHECK(e.is_scalar(), file, ": '", key, "' must be a path or a list of paths");
            out.push_back(e.scalar);
        }
    } else if (!n.is_null()) {
        fail(file, ": '", key, "' must be a path or a list of paths");
    }
    return out;
}

void walk_images(const std::string& dir, std::vector<std::string>* out) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) fail(dir, ": cannot open folder (", std::strerror(errno), ")");
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string p = path_join(dir, n);
        if (is_directory(p)) subdirs.push_back(p);
        else if (is_image_path(p) && file_exists(p)) out->push_back(p);
    }
    ::closedir(d);
    for (const auto& s : subdirs) walk_images(s, out);
}

}  // namespace

bool is_image_path(const std::string& path) {
    std::string e = path_ext_lower(path);
    return e == ".jpg" || e == ".jpeg" || e == ".png";
}

std::vector<std::string> list_images(const std::string& dir) {
    std::vector<std::string> out;
    walk_images(dir, &out);
    std::sort(out.begin(), out.end());
    return out;
}

std::string label_path_for(const std::string& image_path) {
    std::string p = image_path;
    size_t k = p.rfind("/images/");
    if (k != std::string::npos) p = p.substr(0, k) + "/labels/" + p.substr(k + 8);
    else if (p.compare(0, 7, "images/") == 0) p = "labels/" + p.substr(7);  // relative path at the root
    size_t slash = p.find_last_of('/');
    size_t dot = p.find_last_of('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) p = p.substr(0, dot);
    return p + ".txt";
}

std::vector<LabelBox> parse_labels(const std::string& text, const std::string& file, int nc,
                                   std::vector<std::string>* warnings, int* skipped) {
    std::vector<LabelBox> out;
    std::set<std::tuple<int, float, float, float, float>> seen;
    std::istringstream is(text);
    std::string line;
    int number = 0;
    auto skip = [&](const std::string& why) {
        if (warnings) warnings->push_back(cat(file, ":", number, ": ", why, "; line skipped"));
        if (skipped) ++*skipped;
    };
    while (std::getline(is, line)) {
        ++number;
        std::istringstream ls(line);
        std::vector<std::string> cols;
        std::string tok;
        while (ls >> tok) cols.push_back(tok);
        if (cols.empty()) continue;  // blank lines are harmless
        if (cols.size() != 5) {
            skip(cat("expected 5 columns (class cx cy w h), got ", cols.size()));
            continue;
        }
        double v[5];
        bool numeric = true;
        for (int i = 0; i < 5 && numeric; ++i) {
            char* end = nullptr;
            v[i] = std::strtod(cols[size_t(i)].c_str(), &end);
            numeric = end && *end == '\0' && std::isfinite(v[i]);
        }
        if (!numeric) {
            skip(cat("not a number in '", line, "'"));
            continue;
        }
        // Ultralytics reads classes as floats and truncates; only whole numbers make sense.
        if (v[0] != std::floor(v[0]) || v[0] < 0 || v[0] >= nc) {
            skip(cat("class ", cols[0], " is not in 0..", nc - 1));
            continue;
        }
        bool in_range = true;
        for (int i = 1; i < 5; ++i) in_range = in_range && v[i] >= 0.0 && v[i] <= 1.0;
        if (!in_range) {
            skip("coordinates must be normalized to [0,1]");
            continue;
        }
        LabelBox b;
        b.class_id = int(v[0]);
        b.cx = float(v[1]);
        b.cy = float(v[2]);
        b.w = float(v[3]);
        b.h = float(v[4]);
        // Ultralytics drops exact duplicate rows (np.unique); a duplicate would count twice.
        if (!seen.insert(std::make_tuple(b.class_id, b.cx, b.cy, b.w, b.h)).second) {
            skip("duplicate of an earlier label");
            continue;
        }
        out.push_back(b);
    }
    return out;
}

DataConfig load_data_config(const std::string& yaml_path) {
    YOLOC_CHECK(file_exists(yaml_path), yaml_path, ": dataset yaml not found");
    YamlNode root = parse_yaml(read_file(yaml_path), yaml_path);
    YOLOC_CHECK(root.is_map(), yaml_path, ": expected a map (path, train, val, names)");
    DataConfig cfg;
    cfg.yaml_path = yaml_path;
    std::string folder = path_dirname(yaml_path);
    const YamlNode* path = root.get("path");
    if (path && path->is_scalar() && !path->scalar.empty()) cfg.root = resolve(folder, path->scalar);
    else cfg.root = folder;

    // names: {0: a, 1: b} or [a, b]; nc alone gives class0.. names.
    const YamlNode* names = root.get("names");
    if (names && names->is_list()) {
        for (const auto& e : names->list) {
            YOLOC_CHECK(e.is_scalar(), yaml_path, ": 'names' entries must be strings");
            cfg.names.push_back(e.scalar);
        }
    } else if (names && names->is_map()) {
        std::map<long, std::string> by_id;
        for (const auto& kv : names->map) {
            long id = 0;
            YOLOC_CHECK(parse_int(kv.first, &id) && id >= 0, yaml_path, ": 'names' keys must be class indices, got '",
                        kv.first, "'");
            YOLOC_CHECK(id < kMaxClasses, yaml_path, ": class index ", id, " in 'names' is over ", kMaxClasses);
            YOLOC_CHECK(kv.second.is_scalar(), yaml_path, ": name of class ", id, " must be a string");
            by_id[id] = kv.second.scalar;
        }
        long expect = 0;
        for (const auto& kv : by_id) {
            YOLOC_CHECK(kv.first == expect, yaml_path, ": 'names' must number classes 0..", by_id.size() - 1,
                        " without gaps (missing ", expect, ")");
            cfg.names.push_back(kv.second);
            ++expect;
        }
    } else if (names && !names->is_null()) {
        fail(yaml_path, ": 'names' must be a map {0: name} or a list [name, ...]");
    }
    const YamlNode* nc = root.get("nc");
    if (nc && nc->is_scalar()) {
        long n = 0;
        YOLOC_CHECK(parse_int(nc->scalar, &n) && n > 0, yaml_path, ": 'nc' must be a positive integer");
        // Bounded before any name is made up for it (a typo must not allocate gigabytes).
        YOLOC_CHECK(n <= kMaxClasses, yaml_path, ": 'nc' is ", n, ", more than ", kMaxClasses, " classes");
        if (cfg.names.empty())
            for (long i = 0; i < n; ++i) cfg.names.push_back("class" + std::to_string(i));
        YOLOC_CHECK(size_t(n) == cfg.names.size(), yaml_path, ": nc is ", n, " but ", cfg.names.size(),
                    " names are given");
    }
    YOLOC_CHECK(!cfg.names.empty(), yaml_path, ": no classes: give 'names' (and optionally 'nc')");

    for (const char* key : {"train", "val", "test", "minival"}) {
        const YamlNode* s = root.get(key);
        if (!s || s->is_null()) continue;
        std::vector<std::string> entries;
        for (const auto& e : scalars_of(*s, yaml_path, key))
            if (!e.empty()) entries.push_back(resolve(cfg.root, e));
        if (!entries.empty()) cfg.splits[key] = entries;
    }
    return cfg;
}

Dataset load_dataset(const DataConfig& cfg, const std::string& split) {
    auto it = cfg.splits.find(split);
    if (it == cfg.splits.end()) {
        std::string have;
        for (const auto& kv : cfg.splits) have += (have.empty() ? "" : ", ") + kv.first;
        fail(cfg.yaml_path, ": no '", split, "' split (the yaml has: ", have.empty() ? "none" : have, ")");
    }
    std::vector<std::string> files;
    for (const auto& entry : it->second) {
        if (is_directory(entry)) {
            auto f = list_images(entry);
            files.insert(files.end(), f.begin(), f.end());
        } else if (path_ext_lower(entry) == ".txt") {
            YOLOC_CHECK(file_exists(entry), cfg.yaml_path, ": image list '", entry, "' of split '", split,
                        "' not found");
            std::istringstream is(read_file(entry));
            std::string line, base = path_dirname(entry);
            while (std::getline(is, line)) {
                size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
                if (a == std::string::npos) continue;
                line = line.substr(a, b - a + 1);
                // Ultralytics resolves "./x" against the list's folder; so do other relative entries here.
                if (is_image_path(line)) files.push_back(resolve(base, line));
            }
        } else if (is_image_path(entry) && file_exists(entry)) {
            files.push_back(entry);
        } else {
            fail(cfg.yaml_path, ": '", entry, "' of split '", split, "' is not an existing folder, .txt list or image");
        }
    }
    YOLOC_CHECK(!files.empty(), cfg.yaml_path, ": split '", split, "' holds no images (JPEG, PNG)");

    Dataset ds;
    ds.split = split;
    ds.names = cfg.names;
    const int nc = int(cfg.names.size());
    ds.images.reserve(files.size());
    for (const auto& f : files) {
        DatasetImage im;
        im.image_path = f;
        im.label_path = label_path_for(f);
        if (file_exists(im.label_path))
            im.labels = parse_labels(read_file(im.label_path), im.label_path, nc, &ds.warnings, &ds.skipped_label_lines);
        ds.images.push_back(std::move(im));
    }
    return ds;
}

Dataset load_dataset(const std::string& yaml_path, const std::string& split) {
    return load_dataset(load_data_config(yaml_path), split);
}

}  // namespace yoloc
