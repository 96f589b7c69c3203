// Reading a .onnx file without holding its weights twice. A protobuf parse would keep every
// initializer's bytes in the message and then copy them into tensors (~2.5x the weights at peak on
// VGG). Instead the file is mapped, the protobuf wire format is walked just deep enough to find each
// initializer's raw_data, and those bytes are read with pread() straight into the aligned tensor —
// never through the mapping, so they are not counted twice. Everything else (nodes, inputs, small
// tensors' metadata) is parsed normally.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "onnx/onnx_import.h"
#include "onnx/proto_util.h"

namespace dnn {

namespace {

// Field numbers from onnx.proto.
constexpr uint32_t kModelGraph = 7, kGraphInitializer = 5, kTensorRawData = 9;
constexpr int kLengthDelimited = 2;

// One field of a protobuf message: its whole encoding [begin, end) and, for length-delimited
// fields, the payload.
struct Field {
  uint32_t number;
  int wire_type;
  const char *begin, *end, *payload;
  size_t payload_size;
};

class WireReader {
 public:
  WireReader(const char* p, const char* end, const std::string& path) : p_(p), end_(end), path_(path) {}
  bool done() const { return p_ >= end_; }

  Field next() {
    Field f{};
    f.begin = p_;
    uint64_t tag = varint();
    f.number = uint32_t(tag >> 3);
    f.wire_type = int(tag & 7);
    switch (f.wire_type) {
      case 0: varint(); break;
      case 1: skip(8); break;
      case 5: skip(4); break;
      case kLengthDelimited: {
        uint64_t len = varint();
        if (len > uint64_t(end_ - p_)) throw corrupt();
        f.payload = p_, f.payload_size = size_t(len);
        skip(size_t(len));
        break;
      }
      default: throw corrupt();  // groups (3, 4) do not occur in ONNX; anything else is damage
    }
    if (f.number == 0) throw corrupt();
    f.end = p_;
    return f;
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) throw corrupt();
      uint8_t b = uint8_t(*p_++);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw corrupt();
  }
  void skip(size_t n) {
    if (n > size_t(end_ - p_)) throw corrupt();
    p_ += n;
  }
  ModelError corrupt() const {
    return ModelError("'" + path_ + "' is not a valid ONNX model (truncated or corrupt protobuf)");
  }

  const char* p_;
  const char* end_;
  const std::string& path_;
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw IoError("cannot open ONNX model '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw IoError("cannot read ONNX model '" + path + "': not a regular file");
    }
    size_ = size_t(st.st_size);
    if (size_ == 0) return;
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (m == MAP_FAILED) {
      ::close(fd_);
      throw IoError("cannot map ONNX model '" + path + "': " + std::strerror(errno));
    }
    data_ = static_cast<const char*>(m);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
    ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  // Reads [p, p + n) of the mapping through the file descriptor instead.
  void read(const char* p, size_t n, void* dst, const std::string& path) const {
    off_t offset = off_t(p - data_);
    char* out = static_cast<char*>(dst);
    while (n > 0) {
      ssize_t got = ::pread(fd_, out, n, offset);
      if (got <= 0) throw IoError("cannot read ONNX model '" + path + "': " + (got < 0 ? std::strerror(errno) : "short read"));
      out += got, offset += got, n -= size_t(got);
    }
  }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

template <class Proto>
Proto parse(const std::string& bytes, const std::string& path) {
  Proto p;
  if (!p.ParseFromString(bytes)) throw ModelError("'" + path + "' is not a valid ONNX model (truncated or corrupt protobuf)");
  return p;
}

// One initializer: its values become a tensor; the protobuf keeps its name, type and dims (and the
// values too when small: shape inference reads constant shape operands).
void read_initializer(const MappedFile& file, const Field& f, const std::string& path, OnnxFile& out,
                      onnx::GraphProto& graph) {
  std::string meta_bytes;
  const Field* raw = nullptr;
  Field raw_field{};
  WireReader r(f.payload, f.payload + f.payload_size, path);
  while (!r.done()) {
    Field t = r.next();
    if (t.number == kTensorRawData && t.wire_type == kLengthDelimited) raw_field = t, raw = &raw_field;
    else meta_bytes.append(t.begin, t.end);
  }
  auto meta = parse<onnx::TensorProto>(meta_bytes, path);
  const std::string what = "'" + path + "': initializer '" + meta.name() + "'";
  Tensor t;
  if (raw) {
    RawData data{raw->payload, raw->payload_size,
                 [&](void* dst) { file.read(raw->payload, raw->payload_size, dst, path); }};
    t = tensor_from_raw(meta, &data, what);
  } else {
    t = tensor_from_proto(meta, what);
  }
  onnx::TensorProto* kept = graph.add_initializer();
  if (t.numel() <= kKeepInProtoElements) {
    *kept = tensor_to_proto(t, meta.name());
  } else {
    kept->set_name(meta.name());
    kept->set_data_type(meta.data_type());
    *kept->mutable_dims() = meta.dims();
  }
  out.weights[meta.name()] = std::move(t);
}

}  // namespace

OnnxFile read_onnx_file(const std::string& path) {
  MappedFile file(path);
  OnnxFile out;
  std::string model_rest, graph_rest;
  onnx::GraphProto initializers;  // collects the kept initializer protos
  bool has_graph = false;
  WireReader model(file.data(), file.data() + file.size(), path);
  while (!model.done()) {
    Field f = model.next();
    if (f.number != kModelGraph || f.wire_type != kLengthDelimited) {
      model_rest.append(f.begin, f.end);
      continue;
    }
    has_graph = true;
    WireReader graph(f.payload, f.payload + f.payload_size, path);
    while (!graph.done()) {
      Field g = graph.next();
      if (g.number == kGraphInitializer && g.wire_type == kLengthDelimited) read_initializer(file, g, path, out, initializers);
      else graph_rest.append(g.begin, g.end);
    }
  }
  out.model = parse<onnx::ModelProto>(model_rest, path);
  if (!has_graph) throw ModelError("'" + path + "' holds no model graph (not an ONNX model, or truncated)");
  onnx::GraphProto* g = out.model.mutable_graph();
  *g = parse<onnx::GraphProto>(graph_rest, path);
  g->mutable_initializer()->Swap(initializers.mutable_initializer());
  if (g->node_size() == 0) throw ModelError("'" + path + "' holds no model graph (not an ONNX model, or truncated)");
  return out;
}

}  // namespace dnn
