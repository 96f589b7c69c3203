#include "transport/messages.h"

#include <atomic>
#include <chrono>
#include <cstring>

#include "messages_generated.h"

namespace dnn {

namespace fb = flatbuffers;

namespace {
std::atomic<int64_t> g_clock_offset_us{0};
}

uint64_t unix_ms() { return unix_us() / 1000; }
uint64_t unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() + g_clock_offset_us;
}
void set_clock_offset_ms(int64_t ms) { g_clock_offset_us = ms * 1000; }
uint64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// ---- encoding ----

namespace {

constexpr size_t kDataAlignment = 64;   // as the schema's force_align: Tensor's own alignment

std::string finish(fb::FlatBufferBuilder& b, wire::Body kind, fb::Offset<void> body) {
  b.Finish(wire::CreateEnvelope(b, kind, body), wire::EnvelopeIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

fb::Offset<wire::TensorData> encode_tensor(fb::FlatBufferBuilder& b, const NamedTensor& t) {
  // The data vector is created first and alone, so its force-aligned start is not disturbed.
  b.ForceVectorAlignment(t.tensor.bytes(), 1, kDataAlignment);
  auto data = b.CreateVector(static_cast<const uint8_t*>(t.tensor.raw()), t.tensor.bytes());
  auto shape = b.CreateVector(t.tensor.shape());
  auto name = b.CreateString(t.name);
  return wire::CreateTensorData(b, name, shape, static_cast<wire::DType>(t.tensor.dtype()), data);
}

fb::Offset<fb::Vector<fb::Offset<wire::Attr>>> encode_attrs(fb::FlatBufferBuilder& b, const Attrs& attrs) {
  std::vector<fb::Offset<wire::Attr>> out;
  for (const auto& [key, value] : attrs.all()) {
    auto k = b.CreateString(key);
    if (auto* i = std::get_if<int64_t>(&value)) {
      out.push_back(wire::CreateAttr(b, k, 0, 0, *i, 0));
    } else if (auto* f = std::get_if<float>(&value)) {
      out.push_back(wire::CreateAttr(b, k, *f, 0, 0, 1));
    } else if (auto* s = std::get_if<std::string>(&value)) {
      auto sv = b.CreateString(*s);
      out.push_back(wire::CreateAttr(b, k, 0, sv, 0, 2));
    } else {
      throw Error("join attribute '" + key + "': only int, float and string attributes travel in messages");
    }
  }
  return b.CreateVector(out);
}

fb::Offset<wire::Capabilities> encode_caps(fb::FlatBufferBuilder& b, const Capabilities& c) {
  return wire::CreateCapabilities(b, c.cores, c.threads, c.memory_limit_bytes, c.weight_bytes, c.ms_per_frame);
}

}  // namespace

std::string encode(const TensorMessage& m) {
  size_t bytes = 1024;
  for (const auto& t : m.tensors) bytes += t.tensor.bytes() + kDataAlignment + 64;
  fb::FlatBufferBuilder b(bytes);
  std::vector<fb::Offset<wire::TensorData>> tensors;
  for (const auto& t : m.tensors) tensors.push_back(encode_tensor(b, t));
  auto tensors_v = b.CreateVector(tensors);
  std::vector<fb::Offset<wire::Hop>> hops;
  for (const auto& h : m.hops)
    hops.push_back(wire::CreateHop(b, b.CreateString(h.node), h.stage, h.shard, h.received_us, h.started_us,
                                   h.finished_us));
  auto hops_v = b.CreateVector(hops);
  auto attrs_v = encode_attrs(b, m.join_attrs);
  auto correlation_v = b.CreateVector(reinterpret_cast<const uint8_t*>(m.correlation_data.data()),
                                      m.correlation_data.size());
  auto tm = wire::CreateTensorMessage(
      b, b.CreateString(m.request_id), b.CreateString(m.model), m.stage, m.shard_index, m.shard_count, tensors_v,
      m.deadline_ms, hops_v, b.CreateString(m.reply_to), b.CreateString(m.join_topic),
      static_cast<wire::SplitAxis>(m.join_axis), attrs_v, b.CreateString(m.error),
      static_cast<uint8_t>(std::min(m.handoffs, 255)), m.sent_us, b.CreateString(m.sensor),
      b.CreateString(m.response_topic), correlation_v, m.budget_ms, m.attempt, b.CreateString(m.ack_topic));
  return finish(b, wire::Body::TensorMessage, tm.Union());
}

namespace {
fb::Offset<wire::Hello> encode_hello(fb::FlatBufferBuilder& b, const NodeInfo& i) {
  return wire::CreateHello(b, b.CreateString(i.node_id), b.CreateString(i.model), static_cast<wire::Role>(i.role),
                           i.stage, i.shard_index, i.shard_count, encode_caps(b, i.caps));
}
}  // namespace

std::string encode(const Hello& m) {
  fb::FlatBufferBuilder b(256);
  return finish(b, wire::Body::Hello, encode_hello(b, m.info).Union());
}

std::string encode(const Heartbeat& m) {
  fb::FlatBufferBuilder b(256);
  const NodeInfo& i = m.info;
  auto hb = wire::CreateHeartbeat(b, b.CreateString(i.node_id), b.CreateString(i.model),
                                  static_cast<wire::Role>(i.role), i.stage, i.shard_index, m.queue_depth,
                                  m.queue_capacity, m.processed, m.handed_off, encode_caps(b, i.caps));
  return finish(b, wire::Body::Heartbeat, hb.Union());
}

std::string encode(const Assignment& m) {
  fb::FlatBufferBuilder b(256);
  auto a = wire::CreateAssignment(b, b.CreateString(m.node_id), b.CreateString(m.model), b.CreateString(m.model_path),
                                  static_cast<wire::Role>(m.role), m.stage, m.node_begin, m.node_end,
                                  b.CreateString(m.shard_node), static_cast<wire::SplitAxis>(m.shard_axis),
                                  m.shard_index, m.shard_count);
  return finish(b, wire::Body::Assignment, a.Union());
}

std::string encode(const ErrorReport& m) {
  fb::FlatBufferBuilder b(256);
  auto e = wire::CreateErrorMessage(b, b.CreateString(m.request_id), b.CreateString(m.node_id),
                                    b.CreateString(m.message));
  return finish(b, wire::Body::ErrorMessage, e.Union());
}

std::string encode(const Progress& m) {
  fb::FlatBufferBuilder b(128);
  auto p = wire::CreateProgress(b, b.CreateString(m.request_id), b.CreateString(m.node_id), m.stage, m.shard_index,
                                m.attempt, m.done, m.undelivered);
  return finish(b, wire::Body::Progress, p.Union());
}

std::string encode(const Topology& m) {
  fb::FlatBufferBuilder b(256);
  std::vector<fb::Offset<wire::StageLayout>> stages;
  for (int s : m.shard_counts) stages.push_back(wire::CreateStageLayout(b, s));
  auto t = wire::CreateTopology(b, b.CreateString(m.model), b.CreateVector(stages));
  return finish(b, wire::Body::Topology, t.Union());
}

// ---- decoding ----

namespace {

std::string str(const fb::String* s) { return s ? s->str() : std::string(); }

struct TensorChecker {
  const DecodeLimits& limits;
  const std::shared_ptr<const std::string>& payload;
  std::string request_id, reply_to;   // for the MessageError
  size_t total_bytes = 0;

  [[noreturn]] void fail(const std::string& why) const {
    throw MessageError("tensor message '" + request_id + "': " + why, request_id, reply_to);
  }

  NamedTensor decode(const wire::TensorData& t, size_t index) {
    const std::string what = "tensor " + std::to_string(index) + " ('" + str(t.name()) + "')";
    if (!t.shape() || !t.data()) fail(what + " has no shape or no data");
    if (static_cast<int>(t.shape()->size()) > limits.max_rank)
      fail(what + " has rank " + std::to_string(t.shape()->size()) + ", at most " + std::to_string(limits.max_rank) +
           " is accepted");
    if (t.dtype() != wire::DType::f32 && t.dtype() != wire::DType::i64)
      fail(what + " has unknown dtype " + std::to_string(static_cast<int>(t.dtype())));
    const DType dtype = static_cast<DType>(t.dtype());
    const uint64_t cap_elems = limits.max_message_bytes / dtype_size(dtype);
    Shape shape;
    uint64_t n = 1;
    for (int64_t d : *t.shape()) {
      if (d <= 0) fail(what + " has a dimension " + std::to_string(d) + " (dimensions must be positive)");
      if (static_cast<uint64_t>(d) > cap_elems || n > cap_elems / static_cast<uint64_t>(d))
        fail(what + " is larger than the " + std::to_string(limits.max_message_bytes) + "-byte cap");
      n *= static_cast<uint64_t>(d);
      shape.push_back(d);
    }
    const uint64_t bytes = n * dtype_size(dtype);
    if (t.data()->size() != bytes)
      fail(what + " of shape " + to_string(shape) + " needs " + std::to_string(bytes) + " bytes of data, the message has " +
           std::to_string(t.data()->size()));
    total_bytes += bytes;
    if (total_bytes > limits.max_message_bytes) fail("tensors exceed the " + std::to_string(limits.max_message_bytes) + "-byte cap");

    const uint8_t* data = t.data()->data();
    NamedTensor out{str(t.name()), Tensor()};
    if (reinterpret_cast<uintptr_t>(data) % kDataAlignment == 0) {
      // In place: the payload is immutable and kernels only read their inputs; the tensor holds it.
      std::shared_ptr<void> owner(std::const_pointer_cast<std::string>(payload));
      out.tensor = Tensor::wrap(std::move(shape), dtype, const_cast<uint8_t*>(data), std::move(owner));
    } else {
      out.tensor = Tensor(std::move(shape), dtype);
      std::memcpy(out.tensor.raw(), data, bytes);
    }
    return out;
  }
};

Attrs decode_attrs(const fb::Vector<fb::Offset<wire::Attr>>* v) {
  Attrs a;
  if (!v) return a;
  for (const wire::Attr* x : *v) {
    if (!x->key()) continue;
    switch (x->kind()) {
      case 0: a.set(x->key()->str(), x->i()); break;
      case 1: a.set(x->key()->str(), x->f()); break;
      case 2: a.set(x->key()->str(), str(x->s())); break;
      default: break;   // a newer kind this node does not know: ignore
    }
  }
  return a;
}

TensorMessage decode_tensor_message(const wire::TensorMessage& w, const std::shared_ptr<const std::string>& payload,
                                    const DecodeLimits& limits) {
  TensorMessage m;
  m.request_id = str(w.request_id());
  m.reply_to = str(w.reply_to());
  TensorChecker check{limits, payload, m.request_id, m.reply_to};
  if (m.request_id.empty()) check.fail("no request id");
  m.model = str(w.model());
  m.stage = w.stage();
  m.shard_index = w.shard_index();
  m.shard_count = w.shard_count();
  if (m.stage < 0) check.fail("negative stage " + std::to_string(m.stage));
  if (m.shard_count < 1 || m.shard_index < 0 || m.shard_index >= m.shard_count)
    check.fail("shard " + std::to_string(m.shard_index) + " of " + std::to_string(m.shard_count) + " is out of range");
  if (w.tensors()) {
    if (w.tensors()->size() > limits.max_tensors)
      check.fail(std::to_string(w.tensors()->size()) + " tensors, at most " + std::to_string(limits.max_tensors) +
                 " are accepted");
    for (fb::uoffset_t i = 0; i < w.tensors()->size(); ++i) m.tensors.push_back(check.decode(*w.tensors()->Get(i), i));
  }
  if (m.tensors.empty() && (!w.error() || w.error()->size() == 0)) check.fail("no tensors and no error");
  m.deadline_ms = w.deadline_ms();
  if (w.hops())
    for (const wire::Hop* h : *w.hops())
      m.hops.push_back({str(h->node()), h->stage(), h->shard(), h->received_us(), h->started_us(), h->finished_us()});
  m.join_topic = str(w.join_topic());
  if (static_cast<int>(w.join_axis()) > static_cast<int>(wire::SplitAxis::MAX))
    check.fail("unknown join axis " + std::to_string(static_cast<int>(w.join_axis())));
  m.join_axis = static_cast<JoinAxis>(w.join_axis());
  m.join_attrs = decode_attrs(w.join_attrs());
  m.error = str(w.error());
  m.handoffs = w.handoffs();
  m.sent_us = w.sent_us();
  m.sensor = str(w.sensor());
  m.response_topic = str(w.response_topic());
  if (w.correlation_data())
    m.correlation_data.assign(reinterpret_cast<const char*>(w.correlation_data()->data()), w.correlation_data()->size());
  m.budget_ms = w.budget_ms();
  m.attempt = w.attempt();
  m.ack_topic = str(w.ack_topic());
  return m;
}

NodeInfo decode_info(const fb::String* id, const fb::String* model, wire::Role role, int stage, int shard_index,
                     int shard_count, const wire::Capabilities* caps) {
  NodeInfo i;
  i.node_id = str(id);
  i.model = str(model);
  i.role = static_cast<NodeRole>(role);
  i.stage = stage;
  i.shard_index = shard_index;
  i.shard_count = shard_count;
  if (caps) i.caps = {caps->cores(), caps->threads(), caps->memory_limit_bytes(), caps->weight_bytes(), caps->ms_per_frame()};
  return i;
}

}  // namespace

Message decode_message(const std::shared_ptr<const std::string>& payload, const DecodeLimits& limits) {
  if (!payload) throw MessageError("empty message", "", "");
  if (payload->size() > limits.max_message_bytes)
    throw MessageError("message of " + std::to_string(payload->size()) + " bytes exceeds the " +
                           std::to_string(limits.max_message_bytes) + "-byte cap",
                       "", "");
  const auto* buf = reinterpret_cast<const uint8_t*>(payload->data());
  fb::Verifier verifier(buf, payload->size());
  if (payload->size() < 8 || !wire::VerifyEnvelopeBuffer(verifier))
    throw MessageError("message of " + std::to_string(payload->size()) +
                           " bytes is not a valid dnnswarm envelope (FlatBuffers verification failed)",
                       "", "");
  const wire::Envelope* env = wire::GetEnvelope(buf);
  switch (env->body_type()) {
    case wire::Body::TensorMessage:
      return decode_tensor_message(*env->body_as_TensorMessage(), payload, limits);
    case wire::Body::Hello: {
      auto* h = env->body_as_Hello();
      return Hello{decode_info(h->node_id(), h->model(), h->role(), h->stage(), h->shard_index(), h->shard_count(), h->caps())};
    }
    case wire::Body::Heartbeat: {
      auto* h = env->body_as_Heartbeat();
      Heartbeat out;
      out.info = decode_info(h->node_id(), h->model(), h->role(), h->stage(), h->shard_index(), 1, h->caps());
      out.queue_depth = h->queue_depth();
      out.queue_capacity = h->queue_capacity();
      out.processed = h->processed();
      out.handed_off = h->handed_off();
      return out;
    }
    case wire::Body::Assignment: {
      auto* a = env->body_as_Assignment();
      Assignment out;
      out.node_id = str(a->node_id());
      out.model = str(a->model());
      out.model_path = str(a->model_path());
      out.role = static_cast<NodeRole>(a->role());
      out.stage = a->stage();
      out.node_begin = a->node_begin();
      out.node_end = a->node_end();
      out.shard_node = str(a->shard_node());
      out.shard_axis = static_cast<JoinAxis>(a->shard_axis());
      out.shard_index = a->shard_index();
      out.shard_count = a->shard_count();
      return out;
    }
    case wire::Body::ErrorMessage: {
      auto* e = env->body_as_ErrorMessage();
      return ErrorReport{str(e->request_id()), str(e->node_id()), str(e->message())};
    }
    case wire::Body::Topology: {
      auto* t = env->body_as_Topology();
      Topology out;
      out.model = str(t->model());
      if (t->stages())
        for (const wire::StageLayout* s : *t->stages()) {
          if (s->shard_count() < 1) throw MessageError("topology of '" + out.model + "': shard count below 1", "", "");
          out.shard_counts.push_back(s->shard_count());
        }
      return out;
    }
    case wire::Body::Progress: {
      auto* p = env->body_as_Progress();
      return Progress{str(p->request_id()), str(p->node_id()), p->stage(), p->shard_index(), p->attempt(), p->done(),
                      p->undelivered()};
    }
    default:
      throw MessageError("envelope holds an unknown message kind " + std::to_string(static_cast<int>(env->body_type())),
                         "", "");
  }
}

}  // namespace dnn
