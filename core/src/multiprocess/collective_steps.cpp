#include "multiprocess/collective_steps.h"

#include <ckpt/errors.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

// What one process tells the others: "ok", or "error <kind>\n<message>".
std::string encode(std::exception_ptr error) {
  if (!error) return "ok";
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return "error " + std::to_string(static_cast<int>(e.kind())) + "\n" +
           e.what();
  } catch (const std::exception& e) {
    return "error " + std::to_string(static_cast<int>(ErrorKind::kInternal)) +
           "\n" + e.what();
  } catch (...) {
    return "error " + std::to_string(static_cast<int>(ErrorKind::kInternal)) +
           "\nan unknown exception";
  }
}

// The error `status` (from encode) names, with `prefix` before its
// message; null for "ok". A status no process of this build writes is an
// InternalError.
std::exception_ptr decode(const std::string& status,
                          const std::string& prefix) {
  if (status == "ok") return nullptr;
  const size_t newline = status.find('\n');
  ErrorKind kind = ErrorKind::kInternal;
  std::string message = "an unreadable status (" + status.substr(0, 40) + ")";
  if (status.compare(0, 6, "error ") == 0 && newline != std::string::npos) {
    const std::string number = status.substr(6, newline - 6);
    if (!number.empty() && number.size() < 4 &&
        number.find_first_not_of("0123456789") == std::string::npos &&
        std::stoi(number) <= static_cast<int>(ErrorKind::kIO)) {
      kind = static_cast<ErrorKind>(std::stoi(number));
      message = status.substr(newline + 1);
    }
  }
  try {
    throw_error(kind, prefix + message);
  } catch (...) {
    return std::current_exception();
  }
}

// Fields of an announcement: "<length>:<bytes>" (paths and names may hold
// any byte).
void put_field(std::string& out, const std::string& field) {
  out += std::to_string(field.size()) + ":" + field;
}

bool take_field(std::string_view& in, std::string& field) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 19) {
    return false;
  }
  uint64_t length = 0;
  for (char c : in.substr(0, colon)) {
    if (c < '0' || c > '9') return false;
    length = length * 10 + static_cast<uint64_t>(c - '0');
  }
  if (length > in.size() - colon - 1) return false;
  field.assign(in.substr(colon + 1, static_cast<size_t>(length)));
  in.remove_prefix(colon + 1 + static_cast<size_t>(length));
  return true;
}

std::string process_text(int index, int count) {
  return "process " + std::to_string(index) + " of " + std::to_string(count);
}

// `f()`, with a failure of the collectives themselves as an InternalError
// naming the step (a ckpt::Error keeps its kind).
template <class F>
auto collectively(const fs::path& final_path, const char* step, F&& f) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw InternalError("saving " + final_path.string() + ": the collectives " +
                        "failed while " + step + ": " + e.what());
  }
}

}  // namespace

std::vector<std::string> exchange_shard_layouts(Collectives& collectives,
                                                const fs::path& final_path,
                                                const std::string& mine,
                                                std::exception_ptr error) {
  std::vector<std::string> layouts =
      collectively(final_path, "exchanging the shards", [&] {
        return collectives.all_gather(error ? encode(error)
                                            : "layout\n" + mine);
      });
  if (layouts.size() != static_cast<size_t>(collectives.process_count())) {
    throw InternalError(
        "saving " + final_path.string() + ": all_gather returned " +
        std::to_string(layouts.size()) + " results for " +
        std::to_string(collectives.process_count()) + " processes");
  }
  const int count = collectives.process_count();
  for (size_t p = 0; p < layouts.size(); ++p) {
    if (layouts[p].compare(0, 7, "layout\n") == 0) {
      layouts[p].erase(0, 7);
      continue;
    }
    std::rethrow_exception(decode(
        layouts[p], static_cast<int>(p) == collectives.process_index()
                        ? std::string()
                        : "saving " + final_path.string() + " failed on " +
                              process_text(static_cast<int>(p), count) + ": "));
  }
  return layouts;
}

StartedSave announce_temporary_folder(Collectives& collectives,
                                      int primary_host,
                                      const fs::path& final_path,
                                      const std::vector<std::string>& names,
                                      const std::function<fs::path()>& make) {
  const int me = collectives.process_index();
  std::string announcement;
  if (me == primary_host) {
    try {
      announcement = "ok\n";
      put_field(announcement, make().string());
      put_field(announcement, final_path.string());
      for (const std::string& name : names) put_field(announcement, name);
    } catch (...) {
      announcement = encode(std::current_exception());
    }
  }
  announcement = collectively(final_path, "starting the save", [&] {
    return collectives.broadcast(announcement, primary_host);
  });
  if (announcement.compare(0, 3, "ok\n") != 0) {
    std::rethrow_exception(decode(
        announcement,
        me == primary_host
            ? std::string()
            : "saving " + final_path.string() + ": the primary host (" +
                  process_text(primary_host, collectives.process_count()) +
                  ") could not start it: "));
  }
  std::string_view rest(announcement);
  rest.remove_prefix(3);
  StartedSave started;
  std::string folder, primary_path, name;
  bool readable = take_field(rest, folder) && take_field(rest, primary_path);
  while (readable && !rest.empty()) {
    readable = take_field(rest, name);
    started.primary_names.push_back(name);
  }
  if (!readable) {
    throw InternalError("saving " + final_path.string() +
                        ": the primary host's announcement is unreadable");
  }
  started.folder = folder;
  started.primary_final_path = primary_path;
  return started;
}

std::exception_ptr agree_on_outcome(Collectives& collectives,
                                    const fs::path& final_path,
                                    std::exception_ptr mine) {
  const std::vector<std::string> outcomes =
      collectively(final_path, "agreeing on the outcome",
                   [&] { return collectives.all_gather(encode(mine)); });
  const int count = collectives.process_count();
  for (size_t p = 0; p < outcomes.size(); ++p) {
    if (outcomes[p] == "ok") continue;
    const std::string who = process_text(static_cast<int>(p), count);
    return decode(
        outcomes[p],
        static_cast<int>(p) == collectives.process_index()
            ? std::string()
            : "saving " + final_path.string() + " failed on " + who + ": ");
  }
  return nullptr;
}

std::exception_ptr announce_commit(Collectives& collectives, int primary_host,
                                   const fs::path& final_path,
                                   const std::function<void()>& commit) {
  std::string outcome;
  if (collectives.process_index() == primary_host) {
    try {
      commit();
      outcome = "ok";
    } catch (...) {
      outcome = encode(std::current_exception());
    }
  }
  outcome = collectively(final_path, "committing", [&] {
    return collectives.broadcast(outcome, primary_host);
  });
  return decode(
      outcome,
      collectives.process_index() == primary_host
          ? std::string()
          : "saving " + final_path.string() + ": the primary host (" +
                process_text(primary_host, collectives.process_count()) +
                ") could not commit it: ");
}

}  // namespace ckpt::internal
