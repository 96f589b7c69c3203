#include "format/dnns.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"
#include "format/slice_plan.h"
#include "model_generated.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error ".dnns stores tensors little-endian and reads them in place: add byte swapping for this target"
#endif

namespace dnn {

namespace {

// Preamble: "DNNS", uint32 version, uint64 FlatBuffer header length (little-endian).
constexpr char kMagic[4] = {'D', 'N', 'N', 'S'};
constexpr uint64_t kPreambleBytes = 16;

uint64_t align_up(uint64_t x) { return (x + kDnnsAlignment - 1) / kDnnsAlignment * kDnnsAlignment; }

// ---- writing ----

flatbuffers::Offset<fb::Attribute> write_attr(flatbuffers::FlatBufferBuilder& fbb, const std::string& name,
                                              const AttrValue& v) {
  auto key = fbb.CreateString(name);
  if (auto p = std::get_if<int64_t>(&v))
    return fb::CreateAttribute(fbb, key, fb::AttrValue::IntAttr, fb::CreateIntAttr(fbb, *p).Union());
  if (auto p = std::get_if<float>(&v))
    return fb::CreateAttribute(fbb, key, fb::AttrValue::FloatAttr, fb::CreateFloatAttr(fbb, *p).Union());
  if (auto p = std::get_if<std::string>(&v))
    return fb::CreateAttribute(fbb, key, fb::AttrValue::StringAttr,
                               fb::CreateStringAttr(fbb, fbb.CreateString(*p)).Union());
  if (auto p = std::get_if<std::vector<int64_t>>(&v))
    return fb::CreateAttribute(fbb, key, fb::AttrValue::IntsAttr, fb::CreateIntsAttrDirect(fbb, p).Union());
  auto& floats = std::get<std::vector<float>>(v);
  return fb::CreateAttribute(fbb, key, fb::AttrValue::FloatsAttr, fb::CreateFloatsAttrDirect(fbb, &floats).Union());
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::ValueInfo>>> write_values(
    flatbuffers::FlatBufferBuilder& fbb, const std::vector<ValueInfo>& values) {
  std::vector<flatbuffers::Offset<fb::ValueInfo>> out;
  for (auto& v : values) out.push_back(fb::CreateValueInfoDirect(fbb, v.name.c_str(), &v.shape));
  return fbb.CreateVector(out);
}

// Constants in order of first use, then any unused ones: a node range's weights lie together.
std::vector<std::string> constants_in_use_order(const Graph& g) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (auto& n : g.nodes)
    for (auto& in : n.inputs)
      if (g.constants.count(in) && seen.insert(in).second) order.push_back(in);
  for (auto& kv : g.constants)
    if (seen.insert(kv.first).second) order.push_back(kv.first);
  return order;
}

}  // namespace

void write_dnns(const Graph& g, const std::string& path) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Node>> nodes;
  for (auto& n : g.nodes) {
    std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
    for (auto& kv : n.attrs.all()) attrs.push_back(write_attr(fbb, kv.first, kv.second));
    nodes.push_back(fb::CreateNode(fbb, fbb.CreateString(n.name), fbb.CreateString(n.op),
                                   fbb.CreateVectorOfStrings(n.inputs), fbb.CreateVectorOfStrings(n.outputs),
                                   fbb.CreateVector(attrs)));
  }
  const std::vector<std::string> order = constants_in_use_order(g);
  std::vector<flatbuffers::Offset<fb::Constant>> constants;
  std::vector<uint64_t> offsets;
  uint64_t weights_bytes = 0;
  for (auto& name : order) {
    const Tensor& t = g.constants.at(name);
    uint64_t offset = align_up(weights_bytes);
    offsets.push_back(offset);
    weights_bytes = offset + t.bytes();
    auto dtype = t.dtype() == DType::f32 ? fb::DType::F32 : fb::DType::I64;
    constants.push_back(fb::CreateConstantDirect(fbb, name.c_str(), dtype, &t.shape(), offset, t.bytes()));
  }
  auto inputs = write_values(fbb, g.inputs);
  auto outputs = write_values(fbb, g.outputs);
  auto model = fb::CreateModel(fbb, fbb.CreateString(g.name), inputs, outputs, fbb.CreateVector(nodes),
                               fbb.CreateVector(constants), weights_bytes);
  fb::FinishModelBuffer(fbb, model);

  // Write beside the target and rename, so a reader never sees a half-written model.
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError("cannot write model '" + tmp + "': " + std::strerror(errno));
  const uint32_t version = kDnnsVersion;
  const uint64_t header_len = fbb.GetSize();
  out.write(kMagic, 4);
  out.write(reinterpret_cast<const char*>(&version), 4);
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(reinterpret_cast<const char*>(fbb.GetBufferPointer()), header_len);
  const uint64_t weights_start = align_up(kPreambleBytes + header_len);
  uint64_t pos = kPreambleBytes + header_len;
  const std::vector<char> zeros(kDnnsAlignment, 0);
  for (size_t i = 0; i < order.size(); ++i) {
    const Tensor& t = g.constants.at(order[i]);
    const uint64_t at = weights_start + offsets[i];
    out.write(zeros.data(), at - pos);
    out.write(static_cast<const char*>(t.raw()), t.bytes());
    pos = at + t.bytes();
  }
  if (pos < weights_start) out.write(zeros.data(), weights_start - pos);  // no constants at all
  out.close();
  if (!out) {
    std::remove(tmp.c_str());
    throw IoError("cannot write model '" + tmp + "': " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
}

// ---- reading ----

namespace {

class ModelFile {
 public:
  explicit ModelFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw IoError("cannot open model '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw IoError("cannot stat model '" + path + "': " + std::strerror(errno));
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~ModelFile() { ::close(fd_); }
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  void read(uint64_t offset, uint64_t length, void* dst) const {
    auto* p = static_cast<char*>(dst);
    while (length > 0) {
      ssize_t n = ::pread(fd_, p, length, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw IoError("cannot read model '" + path_ + "': " + std::strerror(errno));
      if (n == 0)
        throw IoError("model '" + path_ + "' ended early (changed while reading?) at offset " + std::to_string(offset));
      p += n;
      offset += static_cast<uint64_t>(n);
      length -= static_cast<uint64_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_;
  uint64_t size_ = 0;
};

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

template <class T>
std::vector<T> vec(const flatbuffers::Vector<T>* v) {
  return v ? std::vector<T>(v->begin(), v->end()) : std::vector<T>();
}

std::vector<std::string> strings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  std::vector<std::string> out;
  if (v)
    for (auto s : *v) out.push_back(s->str());
  return out;
}

std::vector<ValueInfo> values(const flatbuffers::Vector<flatbuffers::Offset<fb::ValueInfo>>* v) {
  std::vector<ValueInfo> out;
  if (v)
    for (auto x : *v) out.push_back({x->name()->str(), vec(x->shape())});
  return out;
}

AttrValue read_attr(const fb::Attribute& a, const std::string& where) {
  switch (a.value_type()) {
    case fb::AttrValue::IntAttr: return a.value_as_IntAttr()->value();
    case fb::AttrValue::FloatAttr: return a.value_as_FloatAttr()->value();
    case fb::AttrValue::StringAttr: return str(a.value_as_StringAttr()->value());
    case fb::AttrValue::IntsAttr: return vec(a.value_as_IntsAttr()->values());
    case fb::AttrValue::FloatsAttr: return vec(a.value_as_FloatsAttr()->values());
    default: throw ModelError(where + ": attribute '" + a.name()->str() + "' has an unknown type");
  }
}

struct Location {
  uint64_t offset, length;
};

// The checked header of a .dnns file: everything but the weights.
struct Header {
  DnnsHeader model;                        // graph structure and constant shapes
  std::map<std::string, Location> where;   // constant bytes, relative to weights_start
  uint64_t weights_start = 0;
  uint64_t bytes = 0;                      // preamble + FlatBuffer
};

Header read_header(const ModelFile& file, const std::string& what) {
  if (file.size() < kPreambleBytes)
    throw ModelError(what + " is not a .dnns model: " + std::to_string(file.size()) + " bytes is too short");
  char preamble[kPreambleBytes];
  file.read(0, kPreambleBytes, preamble);
  if (std::memcmp(preamble, kMagic, 4) != 0) throw ModelError(what + " is not a .dnns model (bad magic)");
  uint32_t version;
  uint64_t header_len;
  std::memcpy(&version, preamble + 4, 4);
  std::memcpy(&header_len, preamble + 8, 8);
  if (version != kDnnsVersion)
    throw ModelError(what + " has format version " + std::to_string(version) + "; this build reads version " +
                     std::to_string(kDnnsVersion));
  if (header_len > file.size() - kPreambleBytes)
    throw ModelError(what + " is truncated: its header of " + std::to_string(header_len) +
                     " bytes does not fit in the file's " + std::to_string(file.size()) + " bytes");

  std::vector<uint8_t> buffer(header_len);
  file.read(kPreambleBytes, header_len, buffer.data());
  flatbuffers::Verifier verifier(buffer.data(), buffer.size());
  if (!fb::VerifyModelBuffer(verifier)) throw ModelError(what + " has a corrupt header (FlatBuffers verification failed)");
  const fb::Model* model = fb::GetModel(buffer.data());
  Header h;
  h.bytes = kPreambleBytes + header_len;
  h.weights_start = align_up(kPreambleBytes + header_len);
  const uint64_t weights_bytes = model->weights_bytes();
  if (weights_bytes > file.size() || h.weights_start > file.size() - weights_bytes)
    throw ModelError(what + " is truncated: its weights end at byte " + std::to_string(h.weights_start + weights_bytes) +
                     " but the file has " + std::to_string(file.size()) + " bytes");

  Graph& g = h.model.graph;
  g.name = str(model->name());
  g.inputs = values(model->inputs());
  g.outputs = values(model->outputs());
  if (model->nodes())
    for (auto n : *model->nodes()) {
      Node node{n->name()->str(), n->op()->str(), strings(n->inputs()), strings(n->outputs()), {}};
      if (n->attributes())
        for (auto a : *n->attributes()) node.attrs.set(a->name()->str(), read_attr(*a, what + " " + g.describe(node)));
      g.nodes.push_back(std::move(node));
    }

  if (model->constants())
    for (auto c : *model->constants()) {
      const std::string name = c->name()->str();
      const std::string bad = what + ": constant '" + name + "' ";
      if (c->dtype() != fb::DType::F32 && c->dtype() != fb::DType::I64) throw ModelError(bad + "has an unknown dtype");
      ConstantInfo info{c->dtype() == fb::DType::F32 ? DType::f32 : DType::i64, vec(c->shape())};
      uint64_t bytes = dtype_size(info.dtype);
      for (int64_t d : info.shape) {
        if (d < 0 || (d > 0 && bytes > weights_bytes / static_cast<uint64_t>(d)))
          throw ModelError(bad + "has an invalid shape " + to_string(info.shape));
        bytes *= static_cast<uint64_t>(d);
      }
      if (c->length() != bytes)
        throw ModelError(bad + "has length " + std::to_string(c->length()) + " but its shape " + to_string(info.shape) +
                         " needs " + std::to_string(bytes) + " bytes");
      if (c->offset() % kDnnsAlignment != 0 || c->offset() > weights_bytes || bytes > weights_bytes - c->offset())
        throw ModelError(bad + "lies outside the weights section (offset " + std::to_string(c->offset()) +
                         ", length " + std::to_string(bytes) + ", section " + std::to_string(weights_bytes) + " bytes)");
      if (!h.model.constants.emplace(name, info).second) throw ModelError(bad + "is defined twice");
      h.where[name] = {c->offset(), bytes};
    }
  return h;
}

}  // namespace

DnnsHeader read_dnns_header(const std::string& path) {
  ModelFile file(path);
  return read_header(file, "model '" + path + "'").model;
}

Graph read_dnns(const std::string& path, const LoadSpec& spec, ReadStats* stats) {
  ModelFile file(path);
  const std::string what = "model '" + path + "'";
  const Header h = read_header(file, what);
  if (stats) stats->header_bytes += h.bytes;

  try {
    SlicePlan plan = plan_slice(h.model.graph, h.model.constants, spec);
    for (auto& rd : plan.reads) {
      const uint64_t base = h.weights_start + h.where.at(rd.source).offset;
      plan.graph.constants[rd.name] = read_constant(rd, [&](uint64_t offset, uint64_t length, void* dst) {
        file.read(base + offset, length, dst);
        if (stats) {
          stats->weight_bytes += length;
          stats->reads += 1;
        }
      });
    }
    plan.graph.validate();
    return std::move(plan.graph);
  } catch (const ModelError& e) {
    throw ModelError(what + ": " + e.what());
  }
}

}  // namespace dnn
