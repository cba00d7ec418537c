/* The user type of this example: a xoshiro256** random generator state,
 * shared by the host app and its handler plugin as a plain C struct. Across
 * the ckpt ABI it travels as a user object with typestr
 * "example.RngState". */
#ifndef EXAMPLE_RNG_STATE_H_
#define EXAMPLE_RNG_STATE_H_

#include <stdint.h>

#define EXAMPLE_RNG_TYPESTR "example.RngState"

typedef struct example_rng_state {
  uint64_t s[4];
  uint64_t draws; /* how many numbers were drawn */
} example_rng_state;

#endif /* EXAMPLE_RNG_STATE_H_ */
