// Saves and loads a tree, a JSON document and a protobuf message through an
// installed ckpt found by CMake. Prints "ok" and the plugin folder.
#include <ckpt/ckpt.h>
#include <ckpt/proto.h>
#include <google/protobuf/struct.pb.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  try {
    google::protobuf::Struct config;
    (*config.mutable_fields())["lr"].set_number_value(0.25);
    ckpt::save_checkpointables(
        argv[1],
        {{"params", ckpt::Value::dict(
                        {{"w", ckpt::Array::from(std::vector<float>{1, 2})}})},
         {"notes", ckpt::Value::json({{"text", "cmake"}})},
         {"config", ckpt::proto_value(config)}});
    auto parts = ckpt::load_checkpointables(
        argv[1], {{"params", ckpt::Value()},
                  {"config", ckpt::proto_type<google::protobuf::Struct>()}});
    google::protobuf::Struct loaded;
    ckpt::from_proto_value(parts[1].second, &loaded);
    if (parts[0].second.at("w").as_array().to_vector<float>()[1] != 2 ||
        loaded.fields().at("lr").number_value() != 0.25) {
      std::printf("wrong values\n");
      return 1;
    }
    std::printf("ok %s\n", CKPT_PLUGIN_DIR);
    return 0;
  } catch (const ckpt::Error& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
