// The protobuf message the proto seeds and target use: ckpt.test.RunConfig
// (tests/proto/ckpt_test.proto), with one of every kind of field.
#ifndef CKPT_TESTS_FUZZ_PROTO_SAMPLE_H_
#define CKPT_TESTS_FUZZ_PROTO_SAMPLE_H_

#include "ckpt_test.pb.h"

namespace ckpt_fuzz {

ckpt::test::RunConfig sample_config();
// Another, with the other member of the oneof and few fields set.
ckpt::test::RunConfig small_config();

}  // namespace ckpt_fuzz

#endif  // CKPT_TESTS_FUZZ_PROTO_SAMPLE_H_
