// The subcommands of the `ckpt` tool. Each returns the exit code: 0 ok,
// 1 problem found (ckpt::Error escapes to main, which prints it on one line
// and exits 1).
#ifndef CKPT_TOOLS_CKPT_COMMANDS_H_
#define CKPT_TOOLS_CKPT_COMMANDS_H_

#include <string>
#include <vector>

namespace ckpt::tool {

struct Common {
  bool json = false;
  // The name to show for the checkpoint read (an s3:// URL read from a
  // local copy); empty: its path.
  std::string shown_as;
};

int run_plugins(const Common& common);
int run_info(const Common& common, const std::string& dir);
// `keep`: a preservation policy's JSON, or empty for the one the root's
// Checkpointer recorded.
int run_ls(const Common& common, const std::string& root,
           const std::string& keep);
int run_tree(const Common& common, const std::string& dir,
             const std::string& name);
int run_cat(const Common& common, const std::string& dir,
            const std::string& target, bool full);
int run_verify(const Common& common, const std::string& dir);
// `to`: "ckpt" (ckpt's own storage) or "orbax" (pytrees in Python Orbax's
// storage, which Orbax's load_pytree restores).
int run_convert(const Common& common, const std::string& src,
                const std::string& dst, const std::string& to);
// `ckpt cp SRC DST`: a checkpoint between the local disk and S3.
int run_cp(const Common& common, const std::string& src,
           const std::string& dst);
// `ckpt ls s3://bucket/root`: the steps committed in a remote root.
int run_ls_remote(const Common& common, const std::string& url);

// A checkpoint the commands read: `path` itself when it is local; an
// s3:// checkpoint is downloaded (checked) into a temporary folder, removed
// again at scope end. `only`: the checkpointables to fetch (empty: all).
class FetchedCheckpoint {
 public:
  explicit FetchedCheckpoint(const std::string& path,
                             const std::vector<std::string>& only = {});
  ~FetchedCheckpoint();
  FetchedCheckpoint(const FetchedCheckpoint&) = delete;
  FetchedCheckpoint& operator=(const FetchedCheckpoint&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_;
};

}  // namespace ckpt::tool

#endif  // CKPT_TOOLS_CKPT_COMMANDS_H_
