// ckpt -- inspect checkpoints (ours or Python Orbax's) and handler plugins.
// Exit codes: 0 ok, 1 problem found, 2 usage error.
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/s3.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.h"

namespace {

// The first word that is no option must be a command: otherwise says so,
// listing the commands, and returns false.
bool first_word_is_a_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--plugin-path") {
      ++i;
      continue;
    }
    if (word.rfind("-", 0) == 0) continue;
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
      found |= sub->get_name() == word;
    }
    if (!found) {
      std::fprintf(stderr, "ckpt: unknown command '%s'; the commands are %s\n",
                   word.c_str(), known.c_str());
    }
    return found;
  }
  return true;
}

// `ckpt convert [--to ckpt|orbax] SRC DST`.
CLI::App* add_convert(CLI::App& app, std::string& src, std::string& dst,
                      std::string& to) {
  CLI::App* convert = app.add_subcommand(
      "convert",
      "Write a checkpoint (Orbax's too) again: pytrees into HDF5 files h5py "
      "reads, or with --to orbax into Orbax's storage");
  convert->add_option("SRC", src, "Checkpoint to read")->required();
  convert->add_option("DST", dst, "New checkpoint (must not exist)")
      ->required();
  convert
      ->add_option("--to", to,
                   "Storage of the pytrees: ckpt (HDF5, the default) or orbax "
                   "(OCDBT + zarr v3, as Orbax's save_pytree writes)")
      ->check(CLI::IsMember({"ckpt", "orbax"}));
  return convert;
}

// `ckpt ls ROOT [--keep POLICY]`.
CLI::App* add_ls(CLI::App& app, std::string& root, std::string& keep) {
  CLI::App* ls = app.add_subcommand(
      "ls", "The step checkpoints of a root folder, oldest first");
  ls->add_option("ROOT", root,
                 "Root folder of step checkpoints, or an s3:// root")
      ->required();
  ls->add_option("--keep", keep,
                 "A preservation policy as JSON, to show what it keeps "
                 "(default: the one the root's Checkpointer recorded)");
  return ls;
}

// `ckpt cp SRC DST`.
CLI::App* add_cp(CLI::App& app, std::string& src, std::string& dst) {
  CLI::App* cp = app.add_subcommand(
      "cp", "Copy a checkpoint between the local disk and S3 (s3://...)");
  cp->add_option("SRC", src, "Checkpoint to copy")->required();
  cp->add_option("DST", dst, "Where the copy goes (must not exist)")
      ->required();
  return cp;
}

// --json and --plugin-path, also after the subcommand.
void add_common_flags(std::initializer_list<CLI::App*> commands,
                      ckpt::tool::Common& common,
                      std::vector<std::string>& plugin_paths) {
  for (CLI::App* sub : commands) {
    sub->add_flag("--json", common.json, "Print JSON for scripts");
    sub->add_option("--plugin-path", plugin_paths,
                    "Extra plugin folder (repeatable)");
  }
}

// A command reading the checkpoint DIR.
CLI::App* add_reader(CLI::App& app, const char* name, const char* what,
                     std::string& dir) {
  CLI::App* command = app.add_subcommand(name, what);
  command->add_option("DIR", dir, "Checkpoint folder or s3:// URL")->required();
  return command;
}

// `text` with each `from` (when not empty) replaced by `to`: a checkpoint
// read from a local copy is named by its URL.
std::string replaced(std::string text, const std::string& from,
                     const std::string& to) {
  for (size_t at = from.empty() ? std::string::npos : text.find(from);
       at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  // The tool reports problems itself; the library's warnings are noise here.
  ::setenv("CKPT_LOG_LEVEL", "error", /*overwrite=*/0);
  CLI::App app{"ckpt: inspect checkpoints and handler plugins"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_paths;
  ckpt::tool::Common common;
  app.add_option(
      "--plugin-path", plugin_paths,
      "Extra plugin folder (repeatable), loaded after CKPT_PLUGIN_PATH");
  app.add_flag("--json", common.json, "Print JSON for scripts");

  std::string dir, name, target, to = "ckpt";
  bool full = false;
  auto* plugins = app.add_subcommand(
      "plugins", "The handler registry in registration order");
  auto* info =
      add_reader(app, "info",
                 "Layout, timestamps, checkpointables and their handlers", dir);
  std::string keep;
  auto* ls = add_ls(app, dir, keep);
  auto* tree =
      add_reader(app, "tree", "A pytree's structure from its metadata", dir);
  tree->add_option("NAME", name,
                   "Checkpointable (default: the pytree AUTO finds)");
  auto* cat = add_reader(app, "cat",
                         "Print a checkpointable or one key path of it", dir);
  cat->add_option("NAME", target, "NAME or NAME/key/path")->required();
  cat->add_flag("--full", full, "Print every array element");
  auto* verify = add_reader(
      app, "verify", "Check completeness, checksums and that everything loads",
      dir);
  auto* convert = add_convert(app, dir, target, to);
  auto* cp = add_cp(app, dir, target);
  add_common_flags({plugins, info, ls, tree, cat, verify, convert, cp}, common,
                   plugin_paths);

  if (!first_word_is_a_command(app, argc, argv)) return 2;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  std::string fetched;  // the local copy of an s3:// checkpoint
  try {
    for (const auto& folder : plugin_paths) ckpt::load_plugin_folder(folder);
    if (*plugins) return ckpt::tool::run_plugins(common);
    if (*cp) return ckpt::tool::run_cp(common, dir, target);
    if (*ls && ckpt::is_s3_url(dir)) {
      return ckpt::tool::run_ls_remote(common, dir);
    }
    if (*ls) return ckpt::tool::run_ls(common, dir, keep);
    // A checkpoint in S3 is read from a checked copy in a temporary folder
    // (cat: only the checkpointable it prints).
    const ckpt::tool::FetchedCheckpoint local(
        dir, *cat ? std::vector<std::string>{target.substr(0, target.find('/'))}
                  : std::vector<std::string>{});
    const std::string& path = local.path();
    if (path != dir) {
      common.shown_as = dir;
      fetched = path;
    }
    if (*info) return ckpt::tool::run_info(common, path);
    if (*tree) return ckpt::tool::run_tree(common, path, name);
    if (*cat) return ckpt::tool::run_cat(common, path, target, full);
    if (*verify) return ckpt::tool::run_verify(common, path);
    if (*convert) return ckpt::tool::run_convert(common, path, target, to);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt: %s\n",
                 replaced(e.what(), fetched, dir).c_str());
    return 1;
  }
  return 2;
}
