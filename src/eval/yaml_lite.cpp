#include "eval/yaml_lite.h"

#include <cctype>
#include <set>

#include "core/error.h"

namespace yoloc {

const YamlNode* YamlNode::get(const std::string& key) const {
    if (kind != Kind::Map) return nullptr;
    for (const auto& kv : map)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

namespace {

struct Line {
    int number;  // 1-based, for messages
    int indent;
    std::string text;  // without indentation and comment, right-trimmed
};

bool opens_quote_at(const std::string& s, size_t i) {
    // A quote only starts a quoted scalar at the start of a token, so apostrophes
    // inside plain scalars ("teddy bear's") are left alone.
    if (i == 0) return true;
    char p = s[i - 1];
    return p == ' ' || p == '\t' || p == ':' || p == '[' || p == '{' || p == ',' || p == '-';
}

std::string rtrim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
    return s;
}

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    size_t b = s.find_last_not_of(" \t\r");
    return s.substr(a, b - a + 1);
}

std::string strip_comment(const std::string& s) {
    char quote = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quote) {
            if (c == '\\' && quote == '"') ++i;
            else if (c == quote) quote = 0;
        } else if ((c == '\'' || c == '"') && opens_quote_at(s, i)) {
            quote = c;
        } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
            return s.substr(0, i);
        }
    }
    return s;
}

// Bracket depth of a flow fragment, ignoring brackets inside quotes. Incremental:
// scanning resumes where the last call stopped, so a flow value continued over many
// lines costs linear time, not quadratic.
struct BracketScan {
    int depth = 0;
    char quote = 0;
    size_t i = 0;
    int balance(const std::string& s) {
        for (; i < s.size(); ++i) {
            char c = s[i];
            if (quote) {
                if (c == '\\' && quote == '"') ++i;
                else if (c == quote) quote = 0;
            } else if ((c == '\'' || c == '"') && opens_quote_at(s, i)) {
                quote = c;
            } else if (c == '[' || c == '{') {
                ++depth;
            } else if (c == ']' || c == '}') {
                --depth;
            }
        }
        return depth;
    }
};

class Parser {
public:
    Parser(const std::string& text, std::string name) : name_(std::move(name)) {
        size_t pos = 0;
        int number = 0;
        while (pos <= text.size()) {
            size_t e = text.find('\n', pos);
            if (e == std::string::npos) e = text.size();
            std::string raw = text.substr(pos, e - pos);
            pos = e + 1;
            ++number;
            if (number == 1 && raw.size() >= 3 && raw.compare(0, 3, "\xEF\xBB\xBF") == 0) raw = raw.substr(3);
            std::string body = rtrim(strip_comment(raw));
            size_t ind = body.find_first_not_of(' ');
            if (ind == std::string::npos) continue;
            if (body[ind] == '\t') fail(name_, ":", number, ": tabs are not allowed for indentation in YAML");
            std::string t = body.substr(ind);
            if (t == "---" || t == "...") continue;
            if (t[0] == '%') continue;  // directives
            lines_.push_back({number, int(ind), t});
            if (pos > text.size()) break;
        }
    }

    YamlNode parse() {
        if (lines_.empty()) return YamlNode();
        YamlNode root = parse_block(lines_[0].indent);
        if (i_ < lines_.size()) fail(name_, ":", lines_[i_].number, ": unexpected indentation");
        return root;
    }

private:
    static bool is_item(const std::string& t) { return t == "-" || (t.size() >= 2 && t[0] == '-' && t[1] == ' '); }

    // Position of the ':' that separates key and value (followed by space or end), or npos.
    static size_t key_colon(const std::string& t) {
        char quote = 0;
        for (size_t i = 0; i < t.size(); ++i) {
            char c = t[i];
            if (quote) {
                if (c == '\\' && quote == '"') ++i;
                else if (c == quote) quote = 0;
            } else if ((c == '\'' || c == '"') && i == 0) {
                quote = c;
            } else if (c == '[' || c == '{') {
                return std::string::npos;  // a flow collection, not a key
            } else if (c == ':' && (i + 1 == t.size() || t[i + 1] == ' ')) {
                return i;
            }
        }
        return std::string::npos;
    }

    // Nesting is bounded so that the input cannot control the recursion depth.
    static constexpr int kMaxDepth = 64;
    struct DepthGuard {
        DepthGuard(Parser& p, int number) : p_(p) {
            if (++p_.depth_ > kMaxDepth)
                fail(p_.name_, ":", number, ": nested too deeply (more than ", kMaxDepth, " levels)");
        }
        ~DepthGuard() { --p_.depth_; }
        Parser& p_;
    };

    YamlNode parse_block(int indent) {
        DepthGuard guard(*this, lines_[i_].number);
        if (is_item(lines_[i_].text)) return parse_list(indent);
        if (key_colon(lines_[i_].text) != std::string::npos) return parse_map(indent);
        // A lone scalar or flow collection.
        int number = lines_[i_].number;
        std::string text = lines_[i_++].text;
        std::string v = take_value(text, number);
        return parse_value(v, number);
    }

    YamlNode parse_map(int indent) {
        YamlNode node;
        node.kind = YamlNode::Kind::Map;
        std::set<std::string> keys;  // duplicate check in O(log n) per key
        while (i_ < lines_.size() && lines_[i_].indent == indent) {
            const Line ln = lines_[i_];
            if (is_item(ln.text)) fail(name_, ":", ln.number, ": a list item where a 'key: value' was expected");
            size_t c = key_colon(ln.text);
            if (c == std::string::npos) fail(name_, ":", ln.number, ": expected 'key: value', got '", ln.text, "'");
            std::string key = unquote(trim(ln.text.substr(0, c)), ln.number);
            std::string rest = trim(ln.text.substr(c + 1));
            ++i_;
            YamlNode value;
            if (!rest.empty() && (rest[0] == '|' || rest[0] == '>')) {
                // Block scalar (Ultralytics' `download: |` scripts): every following line
                // indented deeper belongs to it. Kept roughly (comments stripped): unused here.
                value.kind = YamlNode::Kind::Scalar;
                while (i_ < lines_.size() && lines_[i_].indent > indent) {
                    value.scalar += std::string(size_t(lines_[i_].indent), ' ') + lines_[i_].text + "\n";
                    ++i_;
                }
            } else if (!rest.empty()) {
                value = parse_value(take_value(rest, ln.number), ln.number);
            } else if (i_ < lines_.size() && lines_[i_].indent > indent) {
                value = parse_block(lines_[i_].indent);
            } else if (i_ < lines_.size() && lines_[i_].indent == indent && is_item(lines_[i_].text)) {
                value = parse_list(indent);  // "key:\n- a\n- b" (list at the key's indentation)
            }
            if (!keys.insert(key).second) fail(name_, ":", ln.number, ": duplicate key '", key, "'");
            node.map.emplace_back(key, std::move(value));
        }
        if (i_ < lines_.size() && lines_[i_].indent > indent)
            fail(name_, ":", lines_[i_].number, ": unexpected indentation");
        return node;
    }

    YamlNode parse_list(int indent) {
        YamlNode node;
        node.kind = YamlNode::Kind::List;
        while (i_ < lines_.size() && lines_[i_].indent == indent && is_item(lines_[i_].text)) {
            Line& ln = lines_[i_];
            std::string rest = ln.text.size() > 1 ? ln.text.substr(1) : std::string();
            size_t off = rest.find_first_not_of(' ');
            if (off == std::string::npos) {
                ++i_;
                if (i_ < lines_.size() && lines_[i_].indent > indent) node.list.push_back(parse_block(lines_[i_].indent));
                else node.list.emplace_back();
                continue;
            }
            // "- key: v" or "- - x": re-read the rest as a block at its own column.
            ln.indent = indent + 1 + int(off);
            ln.text = rest.substr(off);
            if (is_item(ln.text) || key_colon(ln.text) != std::string::npos) {
                node.list.push_back(parse_block(ln.indent));
            } else {
                int number = ln.number;
                std::string text = ln.text;
                ++i_;
                std::string v = take_value(text, number);
                node.list.push_back(parse_value(v, number));
            }
        }
        return node;
    }

    // A value that opens a flow collection may continue on the following lines;
    // callers have already stepped past the value's own line.
    std::string take_value(std::string v, int number) {
        if (v.empty() || (v[0] != '[' && v[0] != '{')) return v;
        BracketScan scan;
        while (scan.balance(v) > 0) {
            if (i_ >= lines_.size()) fail(name_, ":", number, ": unclosed '", v[0], "'");
            v += " " + lines_[i_++].text;
        }
        return v;
    }

    YamlNode parse_value(const std::string& v, int number) {
        size_t pos = 0;
        YamlNode n = parse_flow(v, pos, number, false);
        skip_ws(v, pos);
        if (pos != v.size()) fail(name_, ":", number, ": unexpected text after value: '", v.substr(pos), "'");
        return n;
    }

    static void skip_ws(const std::string& s, size_t& p) {
        while (p < s.size() && (s[p] == ' ' || s[p] == '\t')) ++p;
    }

    // One value at s[pos]; inside a flow collection plain scalars stop at , ] }.
    YamlNode parse_flow(const std::string& s, size_t& pos, int number, bool in_flow) {
        skip_ws(s, pos);
        YamlNode node;
        if (pos >= s.size()) return node;
        char c = s[pos];
        DepthGuard guard(*this, number);
        if (c == '[') {
            node.kind = YamlNode::Kind::List;
            ++pos;
            skip_ws(s, pos);
            if (pos < s.size() && s[pos] == ']') {
                ++pos;
                return node;
            }
            while (true) {
                node.list.push_back(parse_flow(s, pos, number, true));
                skip_ws(s, pos);
                if (pos >= s.size()) fail(name_, ":", number, ": unclosed '['");
                if (s[pos] == ',') {
                    ++pos;
                    skip_ws(s, pos);
                    if (pos < s.size() && s[pos] == ']') {  // trailing comma
                        ++pos;
                        return node;
                    }
                    continue;
                }
                if (s[pos] == ']') {
                    ++pos;
                    return node;
                }
                fail(name_, ":", number, ": expected ',' or ']' in a list");
            }
        }
        if (c == '{') {
            node.kind = YamlNode::Kind::Map;
            ++pos;
            skip_ws(s, pos);
            if (pos < s.size() && s[pos] == '}') {
                ++pos;
                return node;
            }
            while (true) {
                YamlNode key = parse_flow(s, pos, number, true);
                skip_ws(s, pos);
                if (pos >= s.size() || s[pos] != ':') fail(name_, ":", number, ": expected ':' in a {map}");
                ++pos;
                YamlNode val = parse_flow(s, pos, number, true);
                node.map.emplace_back(key.scalar, std::move(val));
                skip_ws(s, pos);
                if (pos >= s.size()) fail(name_, ":", number, ": unclosed '{'");
                if (s[pos] == ',') {
                    ++pos;
                    skip_ws(s, pos);
                    if (pos < s.size() && s[pos] == '}') {
                        ++pos;
                        return node;
                    }
                    continue;
                }
                if (s[pos] == '}') {
                    ++pos;
                    return node;
                }
                fail(name_, ":", number, ": expected ',' or '}' in a {map}");
            }
        }
        node.kind = YamlNode::Kind::Scalar;
        if (c == '\'' || c == '"') {
            size_t start = pos;
            ++pos;
            while (pos < s.size()) {
                if (c == '"' && s[pos] == '\\') {
                    pos += 2;
                    continue;
                }
                if (s[pos] == c) {
                    if (c == '\'' && pos + 1 < s.size() && s[pos + 1] == '\'') {  // '' escapes ' in single quotes
                        pos += 2;
                        continue;
                    }
                    break;
                }
                ++pos;
            }
            if (pos >= s.size()) fail(name_, ":", number, ": unclosed quote");
            ++pos;
            node.scalar = unquote(s.substr(start, pos - start), number);
            return node;
        }
        size_t start = pos;
        while (pos < s.size()) {
            char d = s[pos];
            if (in_flow && (d == ',' || d == ']' || d == '}')) break;
            if (in_flow && d == ':' && (pos + 1 == s.size() || s[pos + 1] == ' ')) break;
            ++pos;
        }
        node.scalar = trim(s.substr(start, pos - start));
        if (!in_flow && (node.scalar == "~" || node.scalar == "null" || node.scalar == "Null" || node.scalar == "NULL")) {
            node.kind = YamlNode::Kind::Null;
            node.scalar.clear();
        }
        return node;
    }

    std::string unquote(const std::string& v, int number) {
        if (v.size() < 2 || (v[0] != '\'' && v[0] != '"') || v.back() != v[0]) return v;
        std::string inner = v.substr(1, v.size() - 2), out;
        if (v[0] == '\'') {
            for (size_t i = 0; i < inner.size(); ++i) {
                out += inner[i];
                if (inner[i] == '\'' && i + 1 < inner.size() && inner[i + 1] == '\'') ++i;
            }
            return out;
        }
        for (size_t i = 0; i < inner.size(); ++i) {
            if (inner[i] != '\\' || i + 1 == inner.size()) {
                out += inner[i];
                continue;
            }
            char e = inner[++i];
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case '\\': out += '\\'; break;
                case '"': out += '"'; break;
                case '/': out += '/'; break;
                default: out += '\\'; out += e; break;
            }
        }
        (void)number;
        return out;
    }

    std::string name_;
    std::vector<Line> lines_;
    size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

YamlNode parse_yaml(const std::string& text, const std::string& name) { return Parser(text, name).parse(); }

}  // namespace yoloc
