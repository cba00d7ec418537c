// directory_store(): a RemoteStore over a folder (ckpt/remote.h).
//
// A key is a file below the root. Every write goes to a temporary file
// beside its target first (".ckpt-put-*", never listed), then takes its
// place by rename (put_file) or by link (put_if_absent: link(2) fails
// when the name exists, so of two writers exactly one wins).
#include <ckpt/errors.h>
#include <ckpt/remote.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "format/names.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTempPrefix = ".ckpt-put-";

class DirectoryStore : public RemoteStore {
 public:
  explicit DirectoryStore(fs::path root) : root_(std::move(root)) {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw_os_error(ec.value(), "cannot create " + root_.string());
  }

  std::string url() const override { return root_.string(); }

  void put_file(const std::string& key,
                const std::string& local_path) override {
    // A removal of another key may take the (empty) folder just made: it
    // is made again, a few times.
    for (int tries = 1;; ++tries) {
      const fs::path target = writable_path_of(key);
      const fs::path temp = temp_beside(target);
      std::error_code ec;
      fs::copy_file(local_path, temp, fs::copy_options::overwrite_existing, ec);
      const bool copied = !ec;
      if (copied) fs::rename(temp, target, ec);
      if (!ec) return;
      std::error_code ignored;
      fs::remove(temp, ignored);
      const bool folder_gone =
          ec.value() == ENOENT && fs::exists(local_path, ignored);
      if (folder_gone && tries < 5) continue;
      throw_os_error(ec.value(), copied ? "cannot write " + target.string()
                                        : "cannot copy " + local_path + " to " +
                                              target.string());
    }
  }

  bool put_if_absent(const std::string& key,
                     const std::string& bytes) override {
    const fs::path target = writable_path_of(key);
    const fs::path temp = temp_beside(target);
    write_file(temp, bytes);
    const int rc = ::link(temp.c_str(), target.c_str());
    const int err = errno;
    std::error_code ignored;
    fs::remove(temp, ignored);
    if (rc == 0) return true;
    if (err == EEXIST) return false;
    throw_os_error(err, "cannot write " + target.string());
  }

  std::string get(const std::string& key, int64_t offset,
                  int64_t length) override {
    const fs::path path = path_of(key);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_os_error(errno, "cannot open " + path.string());
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    const off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0) throw_os_error(errno, "cannot read " + path.string());
    if (offset < 0 || offset > size) {
      throw InvalidArgumentError("the offset " + std::to_string(offset) +
                                 " lies outside " + path.string() + " (" +
                                 std::to_string(size) + " bytes)");
    }
    const int64_t count =
        length < 0 ? size - offset : std::min<int64_t>(length, size - offset);
    std::string out(static_cast<size_t>(count), '\0');
    int64_t done = 0;
    while (done < count) {
      const ssize_t n =
          ::pread(fd, out.data() + done, static_cast<size_t>(count - done),
                  static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_os_error(errno, "cannot read " + path.string());
      if (n == 0) {
        throw IOError(path.string() + " shrank while it was read");
      }
      done += n;
    }
    return out;
  }

  void get_file(const std::string& key,
                const std::string& local_path) override {
    const fs::path path = path_of(key);
    std::error_code ec;
    fs::copy_file(path, local_path, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      throw_os_error(ec.value(),
                     "cannot copy " + path.string() + " to " + local_path);
    }
  }

  std::vector<RemoteObject> list(const std::string& prefix) override {
    std::vector<RemoteObject> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(root_, ec), end;
    if (ec) throw_os_error(ec.value(), "cannot list " + root_.string());
    for (; it != end; it.increment(ec)) {
      if (ec) throw_os_error(ec.value(), "cannot list " + root_.string());
      if (!it->is_regular_file(ec)) continue;
      const std::string name = it->path().filename().string();
      if (name.rfind(kTempPrefix, 0) == 0) continue;
      std::string key = it->path().lexically_relative(root_).generic_string();
      if (key.rfind(prefix, 0) != 0) continue;
      const auto size = it->file_size(ec);
      if (ec) continue;  // removed meanwhile
      out.push_back({std::move(key), static_cast<int64_t>(size)});
    }
    std::sort(out.begin(), out.end(),
              [](const RemoteObject& a, const RemoteObject& b) {
                return a.key < b.key;
              });
    return out;
  }

  void remove(const std::string& key) override {
    const fs::path path = path_of(key);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw_os_error(errno, "cannot remove " + path.string());
    }
    // Empty folders left behind go too, up to the root.
    std::error_code ec;
    for (fs::path dir = path.parent_path(); dir != root_ && !dir.empty();
         dir = dir.parent_path()) {
      if (!fs::remove(dir, ec) || ec) break;
    }
  }

 private:
  // The file of `key`.
  fs::path path_of(const std::string& key) const {
    internal::check_relative_key(key, "the key");
    return root_ / key;
  }

  // The file of `key`, its folders made, for a write.
  fs::path writable_path_of(const std::string& key) const {
    fs::path path = path_of(key);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      throw_os_error(ec.value(),
                     "cannot create " + path.parent_path().string());
    }
    return path;
  }

  fs::path temp_beside(const fs::path& target) {
    return target.parent_path() / (kTempPrefix + std::to_string(::getpid()) +
                                   "-" + std::to_string(counter_.fetch_add(1)));
  }

  static void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw IOError("cannot write " + path.string());
  }

  fs::path root_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

std::shared_ptr<RemoteStore> directory_store(const std::string& root) {
  if (root.empty()) {
    throw InvalidArgumentError("directory_store: the folder's path is empty");
  }
  return std::make_shared<DirectoryStore>(fs::absolute(root));
}

}  // namespace ckpt
