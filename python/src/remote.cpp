#include "remote.h"

#include <ckpt/s3.h>

#include <vector>

#include "casters.h"

namespace nb = nanobind;

namespace ckpt::python {

std::shared_ptr<RemoteStore> store_at(const std::string& url) {
  return is_s3_url(url) ? s3_store(url) : directory_store(url);
}

void bind_remote(nb::module_& m) {
  m.def("upload_checkpoint",
        [](const std::string& local, const std::string& store,
           const std::string& name) {
          std::shared_ptr<RemoteStore> remote = store_at(store);
          nb::gil_scoped_release release;
          upload_checkpoint(local, *remote, name);
        });
  m.def("download_checkpoint",
        [](const std::string& store, const std::string& name,
           const std::string& local, const std::vector<std::string>& only) {
          std::shared_ptr<RemoteStore> remote = store_at(store);
          nb::gil_scoped_release release;
          download_checkpoint(*remote, name, local, only);
        });
  m.def("remove_checkpoint",
        [](const std::string& store, const std::string& name) {
          std::shared_ptr<RemoteStore> remote = store_at(store);
          nb::gil_scoped_release release;
          remove_remote_checkpoint(*remote, name);
        });
  m.def("list_checkpoints", [](const std::string& store) {
    std::shared_ptr<RemoteStore> remote = store_at(store);
    nb::gil_scoped_release release;
    return list_remote_checkpoints(*remote);
  });
}

}  // namespace ckpt::python
