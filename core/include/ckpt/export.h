// ckpt/export.h -- CKPT_API marks what libckpt exports. The library is
// built with hidden visibility: only the classes and functions the public
// headers declare with CKPT_API are part of its ABI; everything in
// core/src stays inside it.
#ifndef CKPT_EXPORT_H_
#define CKPT_EXPORT_H_

#if defined(__GNUC__) || defined(__clang__)
#define CKPT_API __attribute__((visibility("default")))
#else
#define CKPT_API
#endif

#endif  // CKPT_EXPORT_H_
