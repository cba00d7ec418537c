#include "tree/key_path.h"

#include <cstdio>

namespace ckpt::pytree {

namespace {

// Python's repr of a str, appended to `out`: single quotes unless the text
// holds a single quote and no double quote; backslash escapes for quotes,
// backslashes and control characters. Non-ASCII text stays as is (Python 3
// prints it).
void append_python_repr(const std::string& s, std::string& out) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
}

}  // namespace

void append_key_path_repr(const KeyPath& path, std::string& out) {
  out += '(';
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) out += ", ";
    append_python_repr(path[i].key, out);
  }
  if (path.size() == 1) out += ',';
  out += ')';
}

std::string key_path_repr(const KeyPath& path) {
  std::string out;
  append_key_path_repr(path, out);
  return out;
}

std::string hdf5_name(const std::string& key) {
  if (key.empty()) return "%";
  if (key.find_first_not_of('.') == std::string::npos) {
    std::string out;
    for (size_t i = 0; i < key.size(); ++i) out += "%2E";
    return out;
  }
  std::string out;
  size_t start = 0;
  if (key.compare(0, 5, "_ckpt") == 0) {
    out = "%5F";
    start = 1;
  }
  for (size_t i = start; i < key.size(); ++i) {
    char c = key[i];
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else if (c == '\0') {
      out += "%00";  // HDF5 names are C strings
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// hdf5_name(key).size().
size_t hdf5_name_length(const std::string& key) {
  if (key.empty()) return 1;
  if (key.find_first_not_of('.') == std::string::npos) return 3 * key.size();
  size_t n = key.size();
  if (key.compare(0, 5, "_ckpt") == 0) n += 2;
  for (char c : key) {
    if (c == '%' || c == '/' || c == '\0') n += 2;
  }
  return n;
}

}  // namespace

size_t hdf5_path_length(const KeyPath& path) {
  if (path.empty()) return 11;  // "/_ckpt_root"
  size_t n = 0;
  for (const KeyEntry& e : path) n += 1 + hdf5_name_length(e.key);
  return n;
}

std::string hdf5_path(const KeyPath& path) {
  if (path.empty()) return "/_ckpt_root";
  std::string out;
  for (const KeyEntry& e : path) {
    out += '/';
    out += hdf5_name(e.key);
  }
  return out;
}

}  // namespace ckpt::pytree
