// A root folder of step checkpoints: step names, what each folder is, and
// the temporary folders beside them (ckpt/checkpointer.h).
#include "training/checkpoint_root.h"

#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/text.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "format/names.h"
#include "save/save_owner.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

bool all_digits(const std::string& text) {
  return !text.empty() &&
         text.find_first_not_of("0123456789") == std::string::npos;
}

// "5" -> 5; nullopt past 18 significant digits (int64 holds them all).
std::optional<int64_t> to_step(const std::string& digits) {
  const size_t first = std::min(digits.find_first_not_of('0'), digits.size());
  if (digits.size() - first > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return value;
}

// The real folders of `root` (no symbolic links: a step never leads out of
// its root), by name.
std::vector<std::string> folders_in(const fs::path& root) {
  std::vector<std::string> names;
  internal::with_errors_converted([&] {
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.is_directory() && !entry.is_symlink()) {
        names.push_back(entry.path().filename().string());
      }
    }
  });
  std::sort(names.begin(), names.end());
  return names;
}

// The format most of the step-like folders of a root have.
StepNameFormat detect_format(const std::vector<std::string>& names) {
  std::map<std::string, std::pair<size_t, std::optional<int>>> by_prefix;
  for (const std::string& name : names) {
    if (internal::is_temporary_name(name)) continue;
    std::string prefix, digits;
    if (all_digits(name)) {
      digits = name;
    } else {
      const size_t underscore = name.rfind('_');
      if (underscore == std::string::npos || underscore == 0 ||
          !all_digits(name.substr(underscore + 1))) {
        continue;
      }
      prefix = name.substr(0, underscore);
      digits = name.substr(underscore + 1);
    }
    auto& [count, padded] = by_prefix[prefix];
    ++count;
    if (digits.size() > 1 && digits[0] == '0') {
      const int length = static_cast<int>(digits.size());
      padded = padded ? std::min(*padded, length) : length;
    }
  }
  StepNameFormat format;
  size_t best = 0;
  for (const auto& [prefix, found] : by_prefix) {
    if (found.first > best || (found.first == best && prefix.empty())) {
      best = found.first;
      format.prefix = prefix;
      format.fixed_length = found.second;
    }
  }
  return format;
}

uint64_t bytes_under(const fs::path& folder) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_size);
    }
  }
  return total;
}

std::chrono::system_clock::time_point modified_time(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) +
          std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

}  // namespace

void StepNameFormat::check() const {
  auto fail = [&](const std::string& why) {
    throw InvalidArgumentError("invalid step name format (prefix '" +
                               sdk::escaped(prefix) + "'): " + why);
  };
  if (!sdk::is_utf8(prefix)) fail("the prefix is not valid UTF-8");
  if (prefix.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
    fail("the prefix must be one plain name (no '/', '\\' or NUL)");
  }
  if (!prefix.empty() && prefix[0] == '.') fail("the prefix may not be hidden");
  if (internal::is_temporary_name(prefix)) {
    fail("the prefix contains the temporary folder marker");
  }
  if (prefix.size() > 128) fail("the prefix is longer than 128 bytes");
  if (fixed_length && (*fixed_length < 1 || *fixed_length > 64)) {
    fail("fixed_length must be between 1 and 64");
  }
}

std::string StepNameFormat::name(int64_t step) const {
  check();
  if (step < 0) {
    throw InvalidArgumentError("step " + std::to_string(step) + " is negative");
  }
  std::string digits = std::to_string(step);
  if (fixed_length && static_cast<int>(digits.size()) < *fixed_length) {
    digits.insert(0, static_cast<size_t>(*fixed_length) - digits.size(), '0');
  }
  return prefix.empty() ? digits : prefix + "_" + digits;
}

std::optional<int64_t> StepNameFormat::parse(const std::string& name) const {
  std::string digits = name;
  if (!prefix.empty()) {
    if (name.size() <= prefix.size() + 1 ||
        name.compare(0, prefix.size(), prefix) != 0 ||
        name[prefix.size()] != '_') {
      return std::nullopt;
    }
    digits = name.substr(prefix.size() + 1);
  }
  if (!all_digits(digits)) return std::nullopt;
  if (fixed_length) {
    if (static_cast<int>(digits.size()) < *fixed_length) return std::nullopt;
    // Padded names have exactly the fixed length; longer ones no padding.
    if (static_cast<int>(digits.size()) > *fixed_length && digits[0] == '0') {
      return std::nullopt;
    }
  } else if (digits.size() > 1 && digits[0] == '0') {
    return std::nullopt;
  }
  return to_step(digits);
}

namespace internal {

StepFolder read_step_folder(const fs::path& folder, int64_t step,
                            bool with_size) {
  StepFolder out;
  out.checkpoint.step = step;
  out.checkpoint.path = folder;
  try {
    const CheckpointInfo info = read_checkpoint_info(folder);
    out.committed = true;
    out.checkpoint.time =
        info.commit_timestamp_nsecs
            ? std::chrono::system_clock::time_point(
                  std::chrono::duration_cast<
                      std::chrono::system_clock::duration>(
                      std::chrono::nanoseconds(*info.commit_timestamp_nsecs)))
            : modified_time(folder);
    if (info.metrics.is_object() && !info.metrics.empty()) {
      out.checkpoint.metrics = info.metrics;
    } else {
      std::error_code ec;
      if (fs::is_directory(fs::symlink_status(folder / kMetricsName, ec))) {
        // Written without _CHECKPOINT_METADATA's copy (Python Orbax).
        try {
          Value metrics =
              load_checkpointables(folder, {{kMetricsName, Value()}})[0].second;
          if (metrics.kind() == Value::Kind::kJson &&
              metrics.as_json().is_object() && !metrics.as_json().empty()) {
            out.checkpoint.metrics = metrics.as_json();
          }
        } catch (const Error& e) {
          log(CKPT_LOG_WARNING, "the metrics of step " + std::to_string(step) +
                                    " (" + folder.string() +
                                    ") do not load: " + e.what());
        }
      }
    }
  } catch (const Error& e) {
    out.committed = false;
    out.problem = e.what();
    out.checkpoint.time = modified_time(folder);
  }
  if (with_size) out.checkpoint.size_bytes = bytes_under(folder);
  return out;
}

}  // namespace internal

namespace internal {

RootFolders list_root_folders(const fs::path& root,
                              const std::optional<StepNameFormat>& format) {
  internal::with_errors_converted([&] {
    if (!fs::exists(root)) {
      throw NotFoundError("checkpoint root " + root.string() +
                          " does not exist");
    }
    if (!fs::is_directory(root)) {
      throw InvalidLayoutError("checkpoint root " + root.string() +
                               " is not a folder");
    }
  });
  const std::vector<std::string> names = folders_in(root);
  RootFolders out;
  out.format = format ? *format : detect_format(names);
  for (const std::string& name : names) {
    if (internal::is_temporary_name(name)) {
      const internal::FolderOwner owner =
          internal::owner_of_temporary(root / name);
      out.temporaries.push_back({root / name, owner.state, owner.description});
      continue;
    }
    if (const std::optional<int64_t> step = out.format.parse(name)) {
      CheckpointStep found;
      found.step = *step;
      found.path = root / name;
      out.steps.push_back(std::move(found));
    }
  }
  std::sort(out.steps.begin(), out.steps.end(),
            [](const CheckpointStep& a, const CheckpointStep& b) {
              return a.step < b.step;
            });
  return out;
}

}  // namespace internal

RootListing list_checkpoint_root(const fs::path& root,
                                 const std::optional<StepNameFormat>& format,
                                 bool with_sizes) {
  internal::RootFolders folders = internal::list_root_folders(root, format);
  RootListing listing;
  listing.format = std::move(folders.format);
  listing.temporaries = std::move(folders.temporaries);
  for (const CheckpointStep& step : folders.steps) {
    listing.steps.push_back(
        internal::read_step_folder(step.path, step.step, with_sizes));
  }
  return listing;
}

}  // namespace ckpt
