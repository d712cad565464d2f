// A progress bar on stderr, drawn only when stderr is a terminal (so logs and
// CI output stay clean). Library code may drive it: it writes nothing otherwise.
#pragma once

#include <chrono>
#include <string>

namespace yoloc {

class Progress {
public:
    Progress(std::string label, int64_t total);
    ~Progress();
    void step(int64_t n = 1);
    void set(int64_t done);
    void finish();
    static bool enabled();

private:
    void draw(bool force);
    std::string label_;
    int64_t total_, done_ = 0;
    bool active_, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace yoloc
