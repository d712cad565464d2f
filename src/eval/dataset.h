// Detection datasets in Ultralytics' layout: a data.yaml naming the splits and the
// classes, images in folders (or listed in .txt files), and one YOLO label file per
// image found by replacing the last /images/ with /labels/ and the extension with .txt.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace yoloc {

// One box of a YOLO label line: class, then centre and size normalized to [0,1].
struct LabelBox {
    int class_id = 0;
    float cx = 0.f, cy = 0.f, w = 0.f, h = 0.f;
};

struct DatasetImage {
    std::string image_path;
    std::string label_path;        // where the labels are expected (may not exist)
    std::vector<LabelBox> labels;  // empty: no objects
};

// Most classes a data.yaml may declare (`nc`, `names`).
constexpr long kMaxClasses = 65536;

// What a data.yaml says, with paths resolved.
struct DataConfig {
    std::string yaml_path;
    std::string root;  // `path`, resolved against the yaml's folder
    std::vector<std::string> names;
    // split name -> entries (folders, .txt lists or image files), resolved against root.
    std::map<std::string, std::vector<std::string>> splits;
};

struct Dataset {
    std::string split;
    std::vector<std::string> names;
    std::vector<DatasetImage> images;
    // "file:line: why" for each label line that was skipped; the library never prints them.
    std::vector<std::string> warnings;
    int skipped_label_lines = 0;
    int64_t instances() const;
};

// Reads and checks a data.yaml (names as a map or a list, `nc`, `path`, splits as a
// string or a list). Throws yoloc::Error naming the file on any problem.
DataConfig load_data_config(const std::string& yaml_path);

// Images of `split` with their labels. Throws when the split is not in the yaml, a
// folder or list is missing, or it holds no images.
Dataset load_dataset(const DataConfig& cfg, const std::string& split);
Dataset load_dataset(const std::string& yaml_path, const std::string& split);

// Images (JPEG, PNG) of a folder and its subfolders, sorted by path.
std::vector<std::string> list_images(const std::string& dir);
bool is_image_path(const std::string& path);

// Ultralytics' img2label_paths: .../images/x/a.jpg -> .../labels/x/a.txt.
std::string label_path_for(const std::string& image_path);

// Parses a label file's text. Bad lines (wrong column count, non-numbers, class out
// of [0, nc), coordinates outside [0,1]) and exact duplicates (dropped like
// Ultralytics does) are skipped: one "file:line: why" warning each, counted in *skipped.
std::vector<LabelBox> parse_labels(const std::string& text, const std::string& file, int nc,
                                   std::vector<std::string>* warnings, int* skipped);

}  // namespace yoloc
