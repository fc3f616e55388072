// Grey PNG fast path (see png.h). The format facts used here are those of the PNG
// specification (ISO/IEC 15948): chunk = length, type, data, CRC-32 of type+data; IHDR
// first; the concatenated IDAT data is one zlib stream of `height` rows, each a filter byte
// then the row's bytes (16-bit samples big-endian); filters Sub, Up, Average, Paeth
// predict from the byte one pixel to the left and the byte above.
#include "png.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(FI_HAVE_LIBDEFLATE)
#include <libdeflate.h>
#elif defined(FI_HAVE_ZLIB)
#include <zlib.h>
#endif

namespace fi {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
// sharp's default limitInputPixels (0x3FFF * 0x3FFF): larger images go to sharp, which
// refuses them with its own message, so that both paths accept the same images.
constexpr uint64_t kMaxPixels = 0x3FFFull * 0x3FFF;

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

bool TypeIs(const uint8_t* t, const char* name) { return std::memcmp(t, name, 4) == 0; }

// Ancillary chunks that do not change the values sharp returns for a grey image (text,
// time, physical size, colour-management hints that readImage ignores). Any other chunk
// sends the file to sharp.
bool HarmlessAncillary(const uint8_t* t) {
  static const char* const kNames[] = {"tEXt", "zTXt", "iTXt", "tIME", "pHYs", "gAMA",
                                       "cHRM", "sRGB", "iCCP", "eXIf", "sBIT"};
  for (const char* n : kNames)
    if (TypeIs(t, n)) return true;
  return false;
}

#if defined(FI_HAVE_LIBDEFLATE)
uint32_t Crc32(const uint8_t* p, size_t n) { return libdeflate_crc32(0, p, n); }

// One decompressor per thread of libuv's pool (it holds ~10 kB of tables).
struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

bool Inflate(const std::vector<std::pair<const uint8_t*, size_t>>& parts, uint8_t* out, size_t out_size) {
  thread_local std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> dec(libdeflate_alloc_decompressor());
  if (!dec) return false;
  std::vector<uint8_t> joined;
  const uint8_t* in = parts[0].first;
  size_t in_size = parts[0].second;
  if (parts.size() > 1) {  // libdeflate takes the whole stream at once
    size_t total = 0;
    for (const auto& p : parts) total += p.second;
    joined.resize(total);
    size_t at = 0;
    for (const auto& p : parts) {
      std::memcpy(joined.data() + at, p.first, p.second);
      at += p.second;
    }
    in = joined.data();
    in_size = total;
  }
  size_t in_used = 0;
  // Exact output size required; the zlib trailer's Adler-32 is checked.
  return libdeflate_zlib_decompress_ex(dec.get(), in, in_size, out, out_size, &in_used, nullptr) == LIBDEFLATE_SUCCESS;
}
#elif defined(FI_HAVE_ZLIB)
uint32_t Crc32(const uint8_t* p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // crc32 takes uInt lengths
    const uInt step = n > (1u << 30) ? (1u << 30) : static_cast<uInt>(n);
    c = crc32(c, p, step);
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(c);
}

bool Inflate(const std::vector<std::pair<const uint8_t*, size_t>>& parts, uint8_t* out, size_t out_size) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return false;
  z.next_out = out;
  size_t out_left = out_size;
  int rc = Z_OK;
  for (const auto& p : parts) {
    z.next_in = const_cast<Bytef*>(p.first);
    size_t in_left = p.second;
    while ((in_left > 0 || z.avail_in > 0) && rc == Z_OK) {
      if (z.avail_in == 0) {
        z.avail_in = in_left > (1u << 30) ? (1u << 30) : static_cast<uInt>(in_left);
        in_left -= z.avail_in;
      }
      if (z.avail_out == 0) {
        z.avail_out = out_left > (1u << 30) ? (1u << 30) : static_cast<uInt>(out_left);
        out_left -= z.avail_out;
      }
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc == Z_BUF_ERROR && z.avail_out == 0 && out_left == 0) rc = Z_DATA_ERROR;  // too much data
    }
    if (rc != Z_OK) break;
  }
  const bool ok = rc == Z_STREAM_END && z.total_out == out_size;
  inflateEnd(&z);
  return ok;
}
#else
uint32_t Crc32(const uint8_t*, size_t) { return 0; }
bool Inflate(const std::vector<std::pair<const uint8_t*, size_t>>&, uint8_t*, size_t) { return false; }
#endif

inline uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a);
  const int pb = std::abs(p - b);
  const int pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  return static_cast<uint8_t>(pb <= pc ? b : c);
}

// Undoes one row's filter in place; `prior` is the previous row, unfiltered (zeros for the
// first row); `bpp` bytes per pixel.
bool Unfilter(int filter, uint8_t* row, const uint8_t* prior, size_t n, size_t bpp) {
  switch (filter) {
    case 0:
      return true;
    case 1:
      for (size_t i = bpp; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + row[i - bpp]);
      return true;
    case 2:
      for (size_t i = 0; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + prior[i]);
      return true;
    case 3:
      for (size_t i = 0; i < bpp; ++i) row[i] = static_cast<uint8_t>(row[i] + (prior[i] >> 1));
      for (size_t i = bpp; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + ((row[i - bpp] + prior[i]) >> 1));
      return true;
    case 4:
      for (size_t i = 0; i < bpp; ++i) row[i] = static_cast<uint8_t>(row[i] + Paeth(0, prior[i], 0));
      for (size_t i = bpp; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + Paeth(row[i - bpp], prior[i], prior[i - bpp]));
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ReadGreyPngHeader(const uint8_t* data, size_t size, GreyPngHeader* header) {
  if (size < 33 || std::memcmp(data, kSignature, 8) != 0) return false;
  if (Be32(data + 8) != 13 || !TypeIs(data + 12, "IHDR")) return false;
  const uint8_t* h = data + 16;
  const uint32_t width = Be32(h);
  const uint32_t height = Be32(h + 4);
  const int depth = h[8];
  const int colour = h[9];
  if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) return false;
  if (uint64_t{width} * height > kMaxPixels) return false;
  // Colour type 0 (grey), compression 0, filter method 0, no interlacing.
  if (colour != 0 || (depth != 8 && depth != 16) || h[10] != 0 || h[11] != 0 || h[12] != 0) return false;
  header->width = width;
  header->height = height;
  header->bit_depth = depth;
  return true;
}

std::string DecodeGreyPng(const uint8_t* data, size_t size, const GreyPngHeader& header, void* out, bool as_float) {
  if (PngInflateLibrary()[0] == '\0') return "built without an inflate library";
  GreyPngHeader check;
  if (!ReadGreyPngHeader(data, size, &check) || check.width != header.width || check.height != header.height ||
      check.bit_depth != header.bit_depth)
    return "not a grey 8/16-bit non-interlaced PNG";
  std::vector<std::pair<const uint8_t*, size_t>> idat;
  bool idat_ended = false;
  bool iend = false;
  size_t pos = 8;
  while (!iend) {
    if (size - pos < 12) return "truncated chunk";
    const uint32_t length = Be32(data + pos);
    if (length > 0x7fffffffu || size - pos - 12 < length) return "truncated chunk";
    const uint8_t* type = data + pos + 4;
    if (Crc32(type, length + 4) != Be32(data + pos + 8 + length)) return "chunk CRC mismatch";
    const uint8_t* body = data + pos + 8;
    if (TypeIs(type, "IDAT")) {
      if (idat_ended) return "IDAT chunks not consecutive";
      idat.emplace_back(body, length);
    } else {
      if (!idat.empty()) idat_ended = true;
      if (TypeIs(type, "IEND")) {
        iend = true;
      } else if (TypeIs(type, "IHDR")) {
        if (pos != 8) return "second IHDR";
      } else if (!HarmlessAncillary(type)) {
        return "chunk " + std::string(reinterpret_cast<const char*>(type), 4) + " left to sharp";
      }
    }
    pos += 12 + size_t{length};
  }
  if (idat.empty()) return "no IDAT chunk";

  const size_t bpp = header.bit_depth / 8;
  const size_t row_bytes = bpp * header.width;
  const size_t stride = row_bytes + 1;
  const size_t total = stride * header.height;
  std::unique_ptr<uint8_t[]> raw(new uint8_t[total]);
  if (!Inflate(idat, raw.get(), total)) return "image data does not inflate to the expected size";

  std::vector<uint8_t> zeros(row_bytes, 0);
  const uint8_t* prior = zeros.data();
  for (size_t r = 0; r < header.height; ++r) {
    uint8_t* line = raw.get() + r * stride;
    uint8_t* row = line + 1;
    if (!Unfilter(line[0], row, prior, row_bytes, bpp)) return "unknown filter type";
    if (as_float) {
      float* dst = static_cast<float*>(out) + r * header.width;
      if (bpp == 1) {
        for (size_t i = 0; i < header.width; ++i) dst[i] = row[i];
      } else {
        for (size_t i = 0; i < header.width; ++i) dst[i] = static_cast<float>((row[2 * i] << 8) | row[2 * i + 1]);
      }
    } else if (bpp == 1) {
      std::memcpy(static_cast<uint8_t*>(out) + r * row_bytes, row, row_bytes);
    } else {
      uint16_t* dst = static_cast<uint16_t*>(out) + r * header.width;
      for (size_t i = 0; i < header.width; ++i) dst[i] = static_cast<uint16_t>((row[2 * i] << 8) | row[2 * i + 1]);
    }
    prior = row;
  }
  return "";
}

const char* PngInflateLibrary() {
#if defined(FI_HAVE_LIBDEFLATE)
  return "libdeflate " LIBDEFLATE_VERSION_STRING;
#elif defined(FI_HAVE_ZLIB)
  return "zlib " ZLIB_VERSION;
#else
  return "";
#endif
}

}  // namespace fi
