#include "format/checksums.h"

#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <ckpt/sdk/files.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
// XXH3 with the widest vector unit the CPU has (twice the speed of the
// SSE2 build on AVX2 machines); the same hashes.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

constexpr std::string_view kHeader = "ckpt-checksums 1\n";
constexpr std::string_view kEnd = "end ";
// Folders nest at most this deep inside a checkpoint.
constexpr int kMaxFolderDepth = 64;
constexpr size_t kHashBuffer = 1 << 20;

std::string encode_path(const std::string& path) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (c <= 0x20 || c >= 0x7f || c == '%') {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// XXH3-64 of the open regular file `fd` (read to its end), whose size was
// `size_hint` bytes when it was stat'ed: the buffer fits the file (up to
// kHashBuffer), so the many small files of a checkpoint cost no large
// allocation each; a file that grew since is still hashed to its end.
uint64_t hash_fd(int fd, uint64_t size_hint, const std::string& shown) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(
      XXH3_createState(), &XXH3_freeState);
  if (!state) throw InternalError("out of memory hashing " + shown);
  XXH3_64bits_reset(state.get());
  // One byte more than the file, so that its end is seen by the first read.
  const size_t capacity =
      static_cast<size_t>(std::min<uint64_t>(size_hint + 1, kHashBuffer));
  std::unique_ptr<char[]> buffer(new char[capacity]);
  for (;;) {
    ssize_t n = ::read(fd, buffer.get(), capacity);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_os_error(errno, "cannot read " + shown);
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buffer.get(), static_cast<size_t>(n));
  }
  return XXH3_64bits_digest(state.get());
}

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool decode_path(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      if (static_cast<unsigned char>(s[i]) <= 0x20) return false;
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  // Relative, inside the checkpoint: no empty, "." or ".." component, no
  // NUL.
  if (out.empty() || out.find('\0') != std::string::npos) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = out.find('/', start);
    std::string_view part(
        out.data() + start,
        (slash == std::string::npos ? out.size() : slash) - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

std::string hex16(uint64_t v) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(v));
  return out;
}

bool parse_hex16(std::string_view s, uint64_t& out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = hex_digit(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

uint64_t xxh3_of(const void* data, size_t size) {
  return XXH3_64bits(data, size);
}

FileDigest xxh3_of_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_os_error(errno, "cannot open " + path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_os_error(errno, "cannot stat " + path);
  if (!S_ISREG(st.st_mode)) {
    throw InvalidArgumentError(path + " is not a regular file");
  }
  const uint64_t xxh3 = hash_fd(fd, static_cast<uint64_t>(st.st_size), path);
  const off_t end = ::lseek(fd, 0, SEEK_CUR);
  if (end < 0) throw_os_error(errno, "cannot read " + path);
  return {static_cast<uint64_t>(end), xxh3};
}

const FileRecord* ChecksumRecord::find(std::string_view path) const {
  auto it = std::lower_bound(
      records.begin(), records.end(), path,
      [](const FileRecord& r, std::string_view p) { return r.path < p; });
  return it != records.end() && it->path == path ? &*it : nullptr;
}

bool SelfCheckedFiles::covers(const std::string& name) const {
  for (const std::string& n : names) {
    if (n == name) return true;
  }
  for (const std::string& p : prefixes) {
    if (name.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

ChecksumRecord record_checksums(
    const fs::path& root,
    const std::map<std::string, SelfCheckedFiles>& self_checked) {
  // Whether `relative` is "<checkpointable>/<file>" of a self-checked file.
  auto handler_checked = [&](const std::string& relative) {
    const size_t slash = relative.find('/');
    if (slash == std::string::npos ||
        relative.find('/', slash + 1) != std::string::npos) {
      return false;
    }
    auto it = self_checked.find(relative.substr(0, slash));
    return it != self_checked.end() &&
           it->second.covers(relative.substr(slash + 1));
  };
  ChecksumRecord out;
  for (auto it = fs::recursive_directory_iterator(root);
       it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& p = it->path();
    const std::string relative = p.lexically_relative(root).generic_string();
    const fs::file_status status = it->symlink_status();
    FileRecord r;
    r.path = relative;
    if (fs::is_directory(status)) {
      r.type = FileRecord::Type::kFolder;
    } else if (fs::is_regular_file(status)) {
      int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) throw_os_error(errno, "cannot open " + p.string());
      ckpt::sdk::UniqueFd closer(fd);
      struct stat st;
      if (::fstat(fd, &st) != 0)
        throw_os_error(errno, "cannot stat " + p.string());
      r.size = static_cast<uint64_t>(st.st_size);
      if (handler_checked(relative)) {
        r.type = FileRecord::Type::kSelfChecked;
      } else {
        r.type = FileRecord::Type::kFile;
        r.xxh3 = hash_fd(fd, r.size, p.string());
      }
    } else {
      throw InvalidArgumentError(
          p.string() +
          " is neither a folder nor a regular file: a checkpoint holds only "
          "those (a handler made it)");
    }
    out.records.push_back(std::move(r));
  }
  std::sort(
      out.records.begin(), out.records.end(),
      [](const FileRecord& a, const FileRecord& b) { return a.path < b.path; });
  return out;
}

std::string checksums_text(const ChecksumRecord& record) {
  std::string text(kHeader);
  for (const FileRecord& r : record.records) {
    switch (r.type) {
      case FileRecord::Type::kFolder:
        text += "d " + encode_path(r.path) + "\n";
        break;
      case FileRecord::Type::kFile:
        text += "f " + std::to_string(r.size) + " " + hex16(r.xxh3) + " " +
                encode_path(r.path) + "\n";
        break;
      case FileRecord::Type::kSelfChecked:
        text +=
            "h " + std::to_string(r.size) + " " + encode_path(r.path) + "\n";
        break;
    }
  }
  text += std::string(kEnd) + hex16(xxh3_of(text.data(), text.size())) + "\n";
  return text;
}

ChecksumRecord parse_checksums(std::string_view text,
                               const std::string& shown) {
  auto damaged = [&](const std::string& why) {
    return DataLossError(shown + " is damaged: " + why);
  };
  if (text.substr(0, kHeader.size()) != kHeader) {
    throw damaged("it does not start with \"ckpt-checksums 1\"");
  }
  if (text.empty() || text.back() != '\n') {
    throw damaged("it is truncated (no final line end)");
  }
  const size_t end_line = text.rfind('\n', text.size() - 2);
  const std::string_view last =
      text.substr(end_line + 1, text.size() - end_line - 2);
  uint64_t recorded = 0;
  if (last.substr(0, kEnd.size()) != kEnd ||
      !parse_hex16(last.substr(kEnd.size()), recorded)) {
    throw damaged("it is truncated (no \"end\" line)");
  }
  if (xxh3_of(text.data(), end_line + 1) != recorded) {
    throw damaged("its own checksum does not match its content");
  }
  ChecksumRecord out;
  size_t pos = kHeader.size();
  while (pos < end_line + 1) {
    const size_t eol = text.find('\n', pos);
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    std::vector<std::string_view> fields;
    size_t start = 0;
    while (fields.size() < 5) {
      size_t space = line.find(' ', start);
      fields.push_back(line.substr(start, space == std::string_view::npos
                                              ? std::string_view::npos
                                              : space - start));
      if (space == std::string_view::npos) break;
      start = space + 1;
    }
    FileRecord r;
    bool ok = false;
    if (fields[0] == "d" && fields.size() == 2) {
      r.type = FileRecord::Type::kFolder;
      ok = decode_path(fields[1], r.path);
    } else if (fields[0] == "f" && fields.size() == 4) {
      r.type = FileRecord::Type::kFile;
      ok = parse_u64(fields[1], r.size) && parse_hex16(fields[2], r.xxh3) &&
           decode_path(fields[3], r.path);
    } else if (fields[0] == "h" && fields.size() == 3) {
      r.type = FileRecord::Type::kSelfChecked;
      ok = parse_u64(fields[1], r.size) && decode_path(fields[2], r.path);
    }
    if (!ok) {
      throw damaged(
          "malformed record \"" +
          std::string(line.substr(0, std::min<size_t>(line.size(), 80))) +
          "\"");
    }
    if (!out.records.empty() && !(out.records.back().path < r.path)) {
      throw damaged("records out of order at \"" + encode_path(r.path) + "\"");
    }
    const std::string parent = parent_of(r.path);
    if (!parent.empty()) {
      const FileRecord* p = out.find(parent);
      if (!p || p->type != FileRecord::Type::kFolder) {
        throw damaged("\"" + encode_path(r.path) + "\" has no folder record");
      }
    }
    out.records.push_back(std::move(r));
  }
  return out;
}

namespace {

// Checks one recorded file against the file `relative` beneath the
// checkpoint.
void check_file(const CheckpointDir& dir, const FileRecord& r,
                const struct stat& st) {
  const std::string shown = (dir.path() / r.path).string();
  if (static_cast<uint64_t>(st.st_size) != r.size) {
    throw DataLossError(shown + " is damaged: " + std::to_string(st.st_size) +
                        " bytes where " + std::to_string(r.size) +
                        " were saved");
  }
  if (r.type != FileRecord::Type::kFile) return;
  int fd = ckpt::sdk::open_beneath(dir.fd(), r.path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) throw_os_error(errno, "cannot open " + shown);
  ckpt::sdk::UniqueFd closer(fd);
  if (hash_fd(fd, r.size, shown) != r.xxh3) {
    throw DataLossError(shown +
                        " is damaged: its checksum does not match the one "
                        "recorded when it was saved");
  }
}

// Walks folder `relative` (already known to be recorded as a folder),
// checking each entry against `record`; collects the paths met in `seen`.
void walk_folder(const CheckpointDir& dir, const ChecksumRecord& record,
                 const std::string& relative, int depth,
                 std::set<std::string>& seen) {
  const std::string shown_folder = (dir.path() / relative).string();
  if (depth > kMaxFolderDepth) {
    throw DataLossError(shown_folder + " nests folders deeper than " +
                        std::to_string(kMaxFolderDepth) + " levels");
  }
  int fd = ckpt::sdk::open_beneath(dir.fd(), relative, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      throw DataLossError(shown_folder + " is not a folder");
    }
    throw_os_error(err, "cannot open " + shown_folder);
  }
  DIR* d = ::fdopendir(fd);
  if (!d) {
    const int err = errno;
    ::close(fd);
    throw_os_error(err, "cannot list " + shown_folder);
  }
  struct DirCloser {
    void operator()(DIR* p) const { ::closedir(p); }
  };
  std::unique_ptr<DIR, DirCloser> closer(d);
  std::vector<std::string> folders;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string child = relative + "/" + name;
    const std::string shown = (dir.path() / child).string();
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      throw_os_error(errno, "cannot stat " + shown);
    }
    const FileRecord* r = record.find(child);
    if (!r) {
      throw DataLossError(shown + " was not there when the checkpoint was " +
                          "saved (it is not in " + kChecksumsFile + ")");
    }
    seen.insert(child);
    if (S_ISDIR(st.st_mode)) {
      if (r->type != FileRecord::Type::kFolder) {
        throw DataLossError(shown + " is a folder where a file was saved");
      }
      folders.push_back(child);
    } else if (S_ISREG(st.st_mode)) {
      if (r->type == FileRecord::Type::kFolder) {
        throw DataLossError(shown + " is a file where a folder was saved");
      }
      check_file(dir, *r, st);
    } else {
      throw DataLossError(shown +
                          " is neither a regular file nor a folder (a "
                          "symbolic link, FIFO or device)");
    }
  }
  closer.reset();
  for (const std::string& f : folders) {
    walk_folder(dir, record, f, depth + 1, seen);
  }
}

}  // namespace

void check_against_record(const CheckpointDir& dir,
                          const ChecksumRecord& record,
                          const std::string& folder) {
  if (folder.empty()) {
    for (const FileRecord& r : record.records) {
      if (r.path.find('/') != std::string::npos ||
          r.type == FileRecord::Type::kFolder) {
        continue;
      }
      const std::string shown = (dir.path() / r.path).string();
      struct stat st;
      if (::fstatat(dir.fd(), r.path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          throw DataLossError(shown + " is missing (it was saved)");
        }
        throw_os_error(errno, "cannot stat " + shown);
      }
      if (!S_ISREG(st.st_mode)) {
        throw DataLossError(shown + " is not a regular file");
      }
      check_file(dir, r, st);
    }
    return;
  }
  const std::string shown_folder = (dir.path() / folder).string();
  const FileRecord* top = record.find(folder);
  if (!top || top->type != FileRecord::Type::kFolder) {
    throw DataLossError("checkpointable folder " + shown_folder +
                        " was not saved with this checkpoint (it is not in " +
                        kChecksumsFile + ")");
  }
  std::set<std::string> seen;
  walk_folder(dir, record, folder, 0, seen);
  // Every record under the folder must have been met (records sharing a
  // prefix are contiguous in sorted order).
  const std::string prefix = folder + "/";
  for (auto it = std::lower_bound(
           record.records.begin(), record.records.end(), prefix,
           [](const FileRecord&r, const std::string&p) { return r.path < p; });
       it != record.records.end() &&
       it->path.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    if (!seen.count(it->path)) {
      throw DataLossError((dir.path() / it->path).string() +
                          " is missing (it was saved)");
    }
  }
}

}  // namespace ckpt::internal
