// ckpt/stateful.h -- host objects that save and load themselves.
//
// A StatefulCheckpointable is handled by the core's built-in stateful
// handler (typestr "ckpt.StatefulCheckpointableHandler"). Both calls have
// the two tiers of every handler: the body of save()/load() is the blocking
// tier, run on the caller's thread; the function it returns (may be empty)
// is the background tier, run on the core's pool.
#ifndef CKPT_STATEFUL_H_
#define CKPT_STATEFUL_H_

#include <ckpt/export.h>

#include <filesystem>
#include <functional>

namespace ckpt {

using BackgroundWork = std::function<void()>;

class CKPT_API StatefulCheckpointable {
 public:
  virtual ~StatefulCheckpointable() = default;

  // Writes the object's state into `directory` (exists, empty). After the
  // blocking tier returns, the object may change: snapshot what the
  // background tier writes.
  virtual BackgroundWork save(const std::filesystem::path& directory) = 0;

  // Restores the object's state in place from `directory`.
  virtual BackgroundWork load(const std::filesystem::path& directory) = 0;
};

}  // namespace ckpt

#endif  // CKPT_STATEFUL_H_
