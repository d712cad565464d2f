// Files: whole-file reads with clear errors, and atomic writes (temporary file in
// the same folder, then rename) so an interrupted command never leaves a partial output.
#pragma once

#include <string>
#include <vector>

namespace yoloc {

std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// Throws unless `path` is a regular file, saying which of "no such file", "is a folder"
// or "is not a regular file (a device, pipe or socket)" it is, then "; expected WHAT".
// (/dev/zero exists, so "no such file" would send the user looking in the wrong place.)
void require_regular_file(const std::string& path, const std::string& what);
// Writes `data` to `path` atomically: a temporary file beside it, then rename(). Creates
// no folders. The first call installs a SIGINT/SIGTERM/SIGHUP handler (only where the
// action is the default) that removes temporary files still being written and then
// dies of the signal, so an interrupted command leaves the old file or the new one,
// never a partial one or a stray temporary.
void write_file_atomic(const std::string& path, const std::string& data);
// Temporary files write_file_atomic is writing right now (for tests).
std::vector<std::string> pending_temp_files();
// Creates a folder and its parents if missing.
void make_dirs(const std::string& path);
// Files in a folder (not recursive), sorted by name.
std::vector<std::string> list_dir(const std::string& dir);
std::string path_stem(const std::string& path);       // "a/b/dog.jpg" -> "dog"
std::string path_dirname(const std::string& path);    // "a/b/dog.jpg" -> "a/b" ("." if none)
std::string path_join(const std::string& a, const std::string& b);
std::string path_ext_lower(const std::string& path);  // ".jpg"

}  // namespace yoloc
