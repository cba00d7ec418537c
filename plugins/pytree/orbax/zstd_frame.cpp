#include "orbax/zstd_frame.h"

#include <zstd.h>

#include <algorithm>
#include <memory>
#include <new>

#include "records/format_errors.h"

namespace ckpt::pytree::orbax {

std::string zstd_decompress(std::string_view compressed, uint64_t max_bytes) {
  struct FreeStream {
    void operator()(ZSTD_DStream* s) const { ZSTD_freeDStream(s); }
  };
  std::unique_ptr<ZSTD_DStream, FreeStream> stream(ZSTD_createDStream());
  if (!stream) throw std::bad_alloc();
  std::string out;
  const uint64_t frame_size =
      ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (frame_size != ZSTD_CONTENTSIZE_UNKNOWN &&
      frame_size != ZSTD_CONTENTSIZE_ERROR) {
    if (frame_size > max_bytes) {
      throw Damaged("zstd data claims " + std::to_string(frame_size) +
                    " bytes, more than the " + std::to_string(max_bytes) +
                    " allowed");
    }
    out.resize(static_cast<size_t>(
        std::min<uint64_t>(frame_size, compressed.size() * 64 + 4096)));
  }
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  size_t used = 0;
  for (;;) {
    if (out.size() == used && used < max_bytes) {
      out.resize(static_cast<size_t>(std::min<uint64_t>(
          max_bytes,
          std::max<uint64_t>(out.size() * 2, used + ZSTD_DStreamOutSize()))));
    }
    ZSTD_outBuffer o{out.data(), out.size(), used};
    const size_t in_before = in.pos;
    const size_t ret = ZSTD_decompressStream(stream.get(), &o, &in);
    const bool progress = in.pos != in_before || o.pos != used;
    used = o.pos;
    if (ZSTD_isError(ret)) {
      throw Damaged(std::string("zstd data is corrupt (") +
                    ZSTD_getErrorName(ret) + ")");
    }
    if (ret == 0) break;  // the frame is complete
    if (progress) continue;
    if (o.pos < o.size) throw Damaged("zstd data ends early");
    if (used >= max_bytes) {
      throw Damaged("zstd data decodes to more than " +
                    std::to_string(max_bytes) + " bytes");
    }
  }
  if (in.pos != in.size) throw Damaged("bytes after the zstd frame");
  out.resize(used);
  return out;
}

void zstd_decompress_into(std::string_view compressed, void* out, size_t size) {
  struct FreeContext {
    void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
  };
  std::unique_ptr<ZSTD_DCtx, FreeContext> context(ZSTD_createDCtx());
  if (!context) throw std::bad_alloc();
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  ZSTD_outBuffer o{out, size, 0};
  for (;;) {
    const size_t in_before = in.pos, out_before = o.pos;
    const size_t ret = ZSTD_decompressStream(context.get(), &o, &in);
    if (ZSTD_isError(ret)) {
      throw Damaged(std::string("zstd data is corrupt (") +
                    ZSTD_getErrorName(ret) + ")");
    }
    if (ret == 0) break;
    if (in.pos != in_before || o.pos != out_before) continue;
    if (o.pos == o.size) {
      throw Damaged("zstd data decodes to more than the " +
                    std::to_string(size) + " bytes expected");
    }
    throw Damaged("zstd data ends early");
  }
  if (o.pos != size) {
    throw Damaged("zstd data decodes to " + std::to_string(o.pos) +
                  " bytes, not the " + std::to_string(size) + " expected");
  }
  if (in.pos != in.size) throw Damaged("bytes after the zstd frame");
}

}  // namespace ckpt::pytree::orbax
