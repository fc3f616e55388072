// Fast path for the images PIV cameras and our own tools write most: grey, 8- or 16-bit,
// non-interlaced PNG. sharp (libvips) stays the reader of everything else and the judge
// of anything odd: whenever this decoder declines (another colour type, an unknown chunk,
// a bad checksum, a damaged stream), the caller reads the file with sharp, which gives
// the established error messages. Decoding here costs the inflate and little more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fi {

struct GreyPngHeader {
  uint32_t width = 0;
  uint32_t height = 0;
  int bit_depth = 0;  // 8 or 16
};

// True when `data` starts like a PNG this fast path takes (signature, IHDR of a grey,
// 8/16-bit, non-interlaced image); fills `header`. Needs the first 33 bytes only.
bool ReadGreyPngHeader(const uint8_t* data, size_t size, GreyPngHeader* header);

// Decodes the whole file into `out`, width*height samples top row first: as stored
// (bit_depth/8 bytes each, native byte order) or, with `as_float`, as float32 values (what
// PIV computes on, without an integer copy in between). Returns "" on success, else why it
// declined (the caller falls back to sharp; the text is for diagnostics only).
std::string DecodeGreyPng(const uint8_t* data, size_t size, const GreyPngHeader& header, void* out, bool as_float);

// The inflate library the fast path uses ("libdeflate x.y", "zlib x.y"), or "" when the
// build has none (the fast path always declines).
const char* PngInflateLibrary();

}  // namespace fi
