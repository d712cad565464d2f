// A small YAML reader for the subset Ultralytics data.yaml files use: block maps
// (key: value) nested by indentation, block lists (- item), flow lists [a, b],
// flow maps {0: a, 1: b}, comments and quoted scalars. No anchors, tags, or
// multi-line scalars. It exists because no YAML library is available on every
// machine yoloc builds on (the GPU machine has none).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace yoloc {

struct YamlNode {
    enum class Kind { Null, Scalar, List, Map };
    Kind kind = Kind::Null;
    std::string scalar;                                   // Kind::Scalar (quotes removed)
    std::vector<YamlNode> list;                           // Kind::List
    std::vector<std::pair<std::string, YamlNode>> map;    // Kind::Map, in file order

    bool is_null() const { return kind == Kind::Null; }
    bool is_scalar() const { return kind == Kind::Scalar; }
    bool is_list() const { return kind == Kind::List; }
    bool is_map() const { return kind == Kind::Map; }
    // Map lookup; nullptr when absent or not a map.
    const YamlNode* get(const std::string& key) const;
};

// Parses `text`; `name` is used in error messages (yoloc::Error with name:line).
YamlNode parse_yaml(const std::string& text, const std::string& name = "<yaml>");

}  // namespace yoloc
