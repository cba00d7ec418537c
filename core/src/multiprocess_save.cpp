#include "multiprocess_save.h"

#include <ckpt/errors.h>

#include <string>
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

StartedSave announce_temporary_folder(Collectives& collectives,
                                      int primary_host,
                                      const fs::path& final_path,
                                      const std::function<fs::path()>& make) {
  const int me = collectives.process_index();
  std::string announcement;
  if (me == primary_host) {
    try {
      announcement = "ok\n" + make().string() + "\n" + final_path.string();
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
  const size_t newline = announcement.find('\n', 3);
  if (newline == std::string::npos) {
    throw InternalError("saving " + final_path.string() +
                        ": the primary host's announcement is unreadable");
  }
  return {announcement.substr(3, newline - 3),
          announcement.substr(newline + 1)};
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
