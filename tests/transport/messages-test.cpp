// Wire messages: round trips, and the verifier/size/shape checks that keep bad buffers out.
#include <gtest/gtest.h>

#include "messages_generated.h"
#include "transport/messages.h"

namespace dnn {
namespace {

auto shared(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

TensorMessage sample_request() {
  TensorMessage m;
  m.request_id = "client-1/42";
  m.model = "lenet5";
  m.stage = 2;
  m.shard_index = 1;
  m.shard_count = 4;
  m.tensors.push_back({"x", Tensor::from_f32({1, 2, 3}, {1, 2, 3, 4, 5, 6})});
  m.tensors.push_back({"ids", Tensor::from_i64({2}, {7, -8})});
  m.deadline_ms = 1234567890123ull;
  m.hops.push_back({"node-a", 0, -1, 10, 20, 30});
  m.reply_to = "dnnswarm/client/client-1/result";
  m.join_topic = "dnnswarm/node/n1/in";
  m.join_axis = JoinAxis::InputColumns;
  m.join_attrs.set("dnn.activation", std::string("Clip"));
  m.join_attrs.set("dnn.act_max", 6.0f);
  m.join_attrs.set("axis", int64_t{1});
  m.handoffs = 3;
  m.sent_us = 99;
  m.sensor = "porch";
  m.response_topic = "cam/porch/answer";
  m.correlation_data = std::string("\x00\xff\x01", 3);
  m.budget_ms = 7500;
  m.attempt = 2;
  m.ack_topic = "p/node/c1/in";
  return m;
}

TEST(Messages, TensorMessageRoundTrip) {
  const TensorMessage in = sample_request();
  auto buf = shared(encode(in));
  Message decoded = decode_message(buf);
  ASSERT_TRUE(std::holds_alternative<TensorMessage>(decoded));
  const auto& m = std::get<TensorMessage>(decoded);
  EXPECT_EQ(m.request_id, in.request_id);
  EXPECT_EQ(m.model, in.model);
  EXPECT_EQ(m.stage, 2);
  EXPECT_EQ(m.shard_index, 1);
  EXPECT_EQ(m.shard_count, 4);
  ASSERT_EQ(m.tensors.size(), 2u);
  EXPECT_EQ(m.tensors[0].name, "x");
  EXPECT_EQ(m.tensors[0].tensor.shape(), (Shape{1, 2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(m.tensors[0].tensor.f32()[i], i + 1);
  EXPECT_EQ(m.tensors[1].tensor.dtype(), DType::i64);
  EXPECT_EQ(m.tensors[1].tensor.i64()[1], -8);
  EXPECT_EQ(m.deadline_ms, in.deadline_ms);
  ASSERT_EQ(m.hops.size(), 1u);
  EXPECT_EQ(m.hops[0].node, "node-a");
  EXPECT_EQ(m.hops[0].finished_us, 30u);
  EXPECT_EQ(m.reply_to, in.reply_to);
  EXPECT_EQ(m.join_topic, in.join_topic);
  EXPECT_EQ(m.join_axis, JoinAxis::InputColumns);
  EXPECT_EQ(m.join_attrs.s("dnn.activation", ""), "Clip");
  EXPECT_EQ(m.join_attrs.f("dnn.act_max", 0), 6.0f);
  EXPECT_EQ(m.join_attrs.i("axis", 0), 1);
  EXPECT_EQ(m.handoffs, 3);
  EXPECT_EQ(m.sent_us, 99u);
  EXPECT_EQ(m.sensor, "porch");
  EXPECT_EQ(m.response_topic, "cam/porch/answer");
  EXPECT_EQ(m.correlation_data, in.correlation_data);   // binary, with a zero byte
  EXPECT_EQ(m.budget_ms, 7500u);
  EXPECT_EQ(m.attempt, 2u);
  EXPECT_EQ(m.ack_topic, "p/node/c1/in");
}

TEST(Messages, TensorDataIsAlignedForInPlaceUse) {
  TensorMessage in = sample_request();
  in.tensors.resize(1);
  in.tensors[0].tensor = Tensor({1000});
  const std::string bytes = encode(in);
  const auto* env = wire::GetEnvelope(bytes.data());
  const auto* data = env->body_as_TensorMessage()->tensors()->Get(0)->data()->data();
  EXPECT_EQ((data - reinterpret_cast<const uint8_t*>(bytes.data())) % 64, 0);

  // Decoding uses the data in place when it lands 64-byte aligned in memory, else an aligned copy.
  std::vector<std::shared_ptr<const std::string>> payloads;   // kept alive: different addresses
  for (int i = 0; i < 16; ++i) {
    auto p = shared(bytes);
    payloads.push_back(p);
    const auto* env_i = wire::GetEnvelope(p->data());
    const void* wire_data = env_i->body_as_TensorMessage()->tensors()->Get(0)->data()->data();
    auto m = std::get<TensorMessage>(decode_message(p));
    const void* used = m.tensors[0].tensor.raw();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(used) % 64, 0u);
    if (reinterpret_cast<uintptr_t>(wire_data) % 64 == 0)
      EXPECT_EQ(used, wire_data);
    else
      EXPECT_NE(used, wire_data);
  }
}

TEST(Messages, ControlMessagesRoundTrip) {
  Heartbeat hb;
  hb.info = {"n1", "alexnet", NodeRole::Shard, 3, 1, 4, {2, 1, 512u << 20, 1000, 12.5f}};
  hb.queue_depth = 5;
  hb.queue_capacity = 8;
  hb.processed = 77;
  hb.handed_off = 4;
  auto h = std::get<Heartbeat>(decode_message(shared(encode(hb))));
  EXPECT_EQ(h.info.node_id, "n1");
  EXPECT_EQ(h.info.role, NodeRole::Shard);
  EXPECT_EQ(h.info.caps.memory_limit_bytes, 512u << 20);
  EXPECT_EQ(h.info.caps.ms_per_frame, 12.5f);
  EXPECT_EQ(h.queue_depth, 5);
  EXPECT_EQ(h.handed_off, 4u);

  Hello hello{hb.info};
  EXPECT_EQ(std::get<Hello>(decode_message(shared(encode(hello)))).info.shard_count, 4);

  Assignment a;
  a.node_id = "n2";
  a.node_begin = 3;
  a.node_end = 9;
  a.shard_node = "fc6";
  a.shard_axis = JoinAxis::OutputRows;
  a.shard_count = 4;
  auto a2 = std::get<Assignment>(decode_message(shared(encode(a))));
  EXPECT_EQ(a2.node_end, 9u);
  EXPECT_EQ(a2.shard_node, "fc6");

  auto e = std::get<ErrorReport>(decode_message(shared(encode(ErrorReport{"c/1", "n3", "too late"}))));
  EXPECT_EQ(e.message, "too late");

  auto t = std::get<Topology>(decode_message(shared(encode(Topology{"m", {1, 4, 1}}))));
  EXPECT_EQ(t.shard_counts, (std::vector<int>{1, 4, 1}));

  auto p = std::get<Progress>(decode_message(shared(encode(Progress{"c/7", "n4", 2, 1, 3, true, false}))));
  EXPECT_EQ(p.request_id, "c/7");
  EXPECT_EQ(p.node_id, "n4");
  EXPECT_EQ(p.stage, 2);
  EXPECT_EQ(p.shard_index, 1);
  EXPECT_EQ(p.attempt, 3u);
  EXPECT_TRUE(p.done);
  EXPECT_FALSE(p.undelivered);
}

TEST(Messages, SteadyClockIgnoresTheWallClockOffset) {
  const uint64_t steady = steady_ms(), wall = unix_ms();
  set_clock_offset_ms(60000);
  EXPECT_GE(unix_ms(), wall + 60000);
  EXPECT_LT(steady_ms(), steady + 5000);
  set_clock_offset_ms(0);
  EXPECT_LT(unix_ms(), wall + 5000);
}

TEST(Messages, GarbageAndTruncatedBuffersAreRefused) {
  EXPECT_THROW(decode_message(shared("")), MessageError);
  EXPECT_THROW(decode_message(shared("hello world, not a flatbuffer at all")), MessageError);
  std::string junk(4096, '\xff');
  EXPECT_THROW(decode_message(shared(junk)), MessageError);

  const std::string good = encode(sample_request());
  ASSERT_NO_THROW(decode_message(shared(good)));
  // The builder may end the buffer with alignment padding; any cut into the content must fail.
  const size_t content_end = good.find_last_not_of('\0') + 1;
  for (size_t len = 0; len < content_end; ++len)
    EXPECT_THROW(decode_message(shared(good.substr(0, len))), MessageError) << "prefix of " << len << " bytes";
  // Flipped bytes may still verify (they can land in tensor data), but must never crash.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    try {
      decode_message(shared(bad));
    } catch (const MessageError&) {
    }
  }
}

TEST(Messages, OversizedMessagesAreRefused) {
  TensorMessage m = sample_request();
  m.tensors[0].tensor = Tensor({1, 1024});
  DecodeLimits small;
  small.max_message_bytes = 2000;
  EXPECT_THROW(decode_message(shared(encode(m)), small), MessageError);
}

// Builds a TensorMessage by hand, so shape and data can disagree.
std::string handmade(const std::vector<int64_t>& shape, size_t data_bytes, int shard_index = 0, int shard_count = 1,
                     const char* request_id = "c/1") {
  flatbuffers::FlatBufferBuilder b;
  std::vector<uint8_t> data(data_bytes, 0);
  auto d = b.CreateVector(data);
  auto t = wire::CreateTensorData(b, b.CreateString("x"), b.CreateVector(shape), wire::DType::f32, d);
  auto tensors = b.CreateVector(std::vector<flatbuffers::Offset<wire::TensorData>>{t});
  auto rid = request_id ? b.CreateString(request_id) : flatbuffers::Offset<flatbuffers::String>();
  auto reply = b.CreateString("dnnswarm/client/c/result");
  auto off = wire::CreateTensorMessage(b, rid, 0, 0, shard_index, shard_count, tensors, 0, 0, reply);
  b.Finish(wire::CreateEnvelope(b, wire::Body::TensorMessage, off.Union()), wire::EnvelopeIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

TEST(Messages, WrongShapesAreRefusedWithWhereToReport) {
  ASSERT_NO_THROW(decode_message(shared(handmade({2, 3}, 24))));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {handmade({2, 3}, 20), "needs 24 bytes"},                      // data shorter than the shape
      {handmade({2, 3}, 28), "needs 24 bytes"},                      // longer
      {handmade({2, 0, 3}, 0), "dimension 0"},                       // empty dimension
      {handmade({2, -3}, 24), "dimension -3"},                       // negative dimension
      {handmade({1, 1, 1, 1, 1, 1, 1, 1, 1}, 4), "rank 9"},          // rank above 8
      {handmade({1ll << 40, 1ll << 40}, 4), "cap"},                  // numel overflow
      {handmade({2, 3}, 24, 4, 4), "out of range"},                  // shard index
  };
  for (const auto& [buf, why] : bad) {
    try {
      decode_message(shared(buf));
      ADD_FAILURE() << "accepted a message that should fail with '" << why << "'";
    } catch (const MessageError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_EQ(e.request_id, "c/1");
      EXPECT_EQ(e.reply_to, "dnnswarm/client/c/result");
    }
  }
  EXPECT_THROW(decode_message(shared(handmade({2, 3}, 24, 0, 1, nullptr))), MessageError);   // no request id
}

}  // namespace
}  // namespace dnn
