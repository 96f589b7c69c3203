#include "core/npy.h"

#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "core/error.h"

namespace dnn {

Tensor parse_npy(const void* data, size_t size, const std::string& what) {
  auto bytes = static_cast<const unsigned char*>(data);
  if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) throw IoError(what + ": not a .npy file");
  int major = bytes[6];
  size_t header_len, offset;
  if (major == 1) {
    header_len = bytes[8] | (bytes[9] << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw IoError(what + ": truncated .npy header");
    header_len = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (size_t(bytes[11]) << 24);
    offset = 12;
  } else {
    throw IoError(what + ": unsupported .npy version " + std::to_string(major));
  }
  if (offset + header_len > size) throw IoError(what + ": truncated .npy header");
  std::string header(reinterpret_cast<const char*>(bytes + offset), header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'")))
    throw IoError(what + ": .npy header has no dtype");
  std::string descr = m[1];
  DType dt;
  if (descr == "<f4") dt = DType::f32;
  else if (descr == "<i8") dt = DType::i64;
  else throw IoError(what + ": dtype " + descr + " is not supported (use float32)");
  if (std::regex_search(header, m, std::regex("'fortran_order':\\s*True")))
    throw IoError(what + ": Fortran-ordered arrays are not supported");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw IoError(what + ": .npy header has no shape");
  Shape shape;
  std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));
  Tensor t(shape, dt);
  size_t body = offset + header_len;
  if (size - body < t.bytes())
    throw IoError(what + ": truncated .npy data (" + std::to_string(size - body) + " of " +
                  std::to_string(t.bytes()) + " bytes)");
  std::memcpy(t.raw(), bytes + body, t.bytes());
  return t;
}

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot open " + path);
  std::string buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_npy(buf.data(), buf.size(), path);
}

void write_npy(const std::string& path, const Tensor& t) {
  std::ostringstream h;
  h << "{'descr': '" << (t.dtype() == DType::f32 ? "<f4" : "<i8") << "', 'fortran_order': False, 'shape': (";
  for (auto d : t.shape()) h << d << ", ";
  h << "), }";
  std::string header = h.str();
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot write " + path);
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = static_cast<uint16_t>(header.size());
  f.put(static_cast<char>(len & 0xff));
  f.put(static_cast<char>(len >> 8));
  f << header;
  f.write(static_cast<const char*>(t.raw()), t.bytes());
  if (!f) throw IoError("short write to " + path);
}

}  // namespace dnn
