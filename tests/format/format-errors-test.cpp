// Broken .dnns files and impossible load specs give clear errors naming the file and what is wrong.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "format/dnns.h"
#include "format/test_graphs.h"
#include "model_generated.h"

namespace dnn {
namespace {

using testing::gemm_graph;

// Runs `f`, expects it to throw E, and returns the message.
template <class E, class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

void patch(const std::string& path, long offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(bytes.data(), bytes.size());
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

// A file with a hand-made header: one f32 constant "w" [4] at `offset`, with `length` bytes,
// in a weights section of `weights_bytes` (the file holds that many bytes of weights).
void write_crafted(const std::string& path, uint64_t offset, uint64_t length, uint64_t weights_bytes) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<int64_t> shape{4};
  std::vector<flatbuffers::Offset<fb::Constant>> constants{
      fb::CreateConstantDirect(fbb, "w", fb::DType::F32, &shape, offset, length)};
  auto model = fb::CreateModel(fbb, fbb.CreateString("crafted"), 0, 0, 0, fbb.CreateVector(constants), weights_bytes);
  fb::FinishModelBuffer(fbb, model);
  std::ofstream out(path, std::ios::binary);
  const uint32_t version = kDnnsVersion;
  const uint64_t header_len = fbb.GetSize();
  out.write("DNNS", 4);
  out.write(reinterpret_cast<const char*>(&version), 4);
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(reinterpret_cast<const char*>(fbb.GetBufferPointer()), header_len);
  const uint64_t weights_start = (16 + header_len + 4095) / 4096 * 4096;
  std::vector<char> zeros(weights_start - 16 - header_len + weights_bytes, 0);
  out.write(zeros.data(), zeros.size());
}

class BrokenFile : public testing::TempDir {
 protected:
  void SetUp() override {
    testing::TempDir::SetUp();
    model_ = path("m.dnns");
    write_dnns(gemm_graph(2, 8, 6, true), model_);
  }
  std::string model_;
};

TEST_F(BrokenFile, MissingFileIsAnIoErrorNamingThePath) {
  auto msg = error_of<IoError>([&] { read_dnns(path("nope.dnns")); });
  EXPECT_NE(msg.find("nope.dnns"), std::string::npos) << msg;
}

TEST_F(BrokenFile, TooShortFile) {
  std::ofstream(path("short.dnns")) << "DNN";
  auto msg = error_of<ModelError>([&] { read_dnns(path("short.dnns")); });
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
}

TEST_F(BrokenFile, BadMagic) {
  patch(model_, 0, "ONNX");
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find(model_), std::string::npos) << msg;
}

TEST_F(BrokenFile, UnknownVersion) {
  patch(model_, 4, std::string("\x63\0\0\0", 4));
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("version 99"), std::string::npos) << msg;
}

TEST_F(BrokenFile, TruncatedInTheHeader) {
  ASSERT_EQ(::truncate(model_.c_str(), 100), 0);
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(BrokenFile, TruncatedInTheWeights) {
  ASSERT_EQ(::truncate(model_.c_str(), file_size(model_) - 1), 0);
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(BrokenFile, CorruptHeaderFailsTheVerifier) {
  patch(model_, 16, std::string("\xff\xff\xff\x7f", 4));  // root table offset far outside the buffer
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("corrupt header"), std::string::npos) << msg;

  write_dnns(gemm_graph(2, 8, 6, true), model_);
  patch(model_, 20, "DNNX");  // the file identifier
  msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("corrupt header"), std::string::npos) << msg;
}

TEST_F(BrokenFile, GarbageHeaderNeverCrashes) {
  // Every single-byte corruption of the header either still reads or throws one of our errors.
  std::ifstream in(model_, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t header_len;
  std::memcpy(&header_len, &bytes[8], 8);
  int rejected = 0;
  for (uint64_t i = 16; i < 16 + header_len; ++i) {
    patch(model_, i, std::string(1, static_cast<char>(bytes[i] ^ 0x5a)));
    try {
      read_dnns(model_);
    } catch (const Error&) {
      ++rejected;
    }
    patch(model_, i, std::string(1, bytes[i]));
  }
  EXPECT_GT(rejected, 0);
}

TEST_F(BrokenFile, ConstantOutsideTheWeightsSection) {
  write_crafted(model_, 8192, 16, 4096);
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("constant 'w' lies outside the weights section"), std::string::npos) << msg;
}

TEST_F(BrokenFile, ConstantLengthDisagreesWithItsShape) {
  write_crafted(model_, 0, 12, 4096);
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("needs 16 bytes"), std::string::npos) << msg;
}

TEST_F(BrokenFile, WeightsSectionLongerThanTheFile) {
  write_crafted(model_, 0, 16, 4096);
  ASSERT_NO_THROW(read_dnns(model_));
  ASSERT_EQ(::truncate(model_.c_str(), file_size(model_) - 4000), 0);
  auto msg = error_of<ModelError>([&] { read_dnns(model_); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

// ---- load specs that cannot be honoured ----

class BadSpec : public BrokenFile {
 protected:
  std::string error(const LoadSpec& spec) {
    auto msg = error_of<ModelError>([&] { read_dnns(model_, spec); });
    EXPECT_NE(msg.find(model_), std::string::npos) << msg;
    return msg;
  }
  static LoadSpec shard(std::string node, SplitAxis axis, int index, int count, size_t begin = 0, size_t end = 1) {
    LoadSpec s;
    s.node_begin = begin;
    s.node_end = end;
    s.shard = ShardSpec{std::move(node), axis, index, count};
    return s;
  }
};

TEST_F(BadSpec, EmptyOrOutOfBoundsRange) {
  LoadSpec s;
  s.node_begin = 1;
  s.node_end = 1;
  EXPECT_NE(error(s).find("node range [1, 1)"), std::string::npos);
  s.node_end = 3;
  EXPECT_NE(error(s).find("2 nodes"), std::string::npos);
}

TEST_F(BadSpec, ShardOfANodeThatIsNotConvOrGemm) {
  auto msg = error(shard("relu", SplitAxis::OutputRows, 0, 2, 1, 2));
  EXPECT_NE(msg.find("node 'relu' (Relu)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("only Conv"), std::string::npos) << msg;
}

TEST_F(BadSpec, ShardAxisThatDoesNotFitTheOp) {
  auto msg = error(shard("fc", SplitAxis::OutputChannels, 0, 2));
  EXPECT_NE(msg.find("a Gemm splits by output-rows or input-columns"), std::string::npos) << msg;
}

TEST_F(BadSpec, ShardIndexOutOfRange) {
  EXPECT_NE(error(shard("fc", SplitAxis::OutputRows, 2, 2)).find("shard index 2 of 2 is out of range"), std::string::npos);
  EXPECT_NE(error(shard("fc", SplitAxis::OutputRows, -1, 2)).find("out of range"), std::string::npos);
  EXPECT_NE(error(shard("fc", SplitAxis::OutputRows, 0, 0)).find("out of range"), std::string::npos);
}

TEST_F(BadSpec, MoreShardsThanRows) {
  // fc has N=6 outputs and K=8 inputs.
  EXPECT_NE(error(shard("fc", SplitAxis::OutputRows, 0, 7)).find("cannot split 6 rows into 7"), std::string::npos);
  EXPECT_NE(error(shard("fc", SplitAxis::InputColumns, 0, 9)).find("cannot split 8 rows into 9"), std::string::npos);
}

TEST_F(BadSpec, ShardedNodeMustEndItsRange) {
  auto msg = error(shard("fc", SplitAxis::OutputRows, 0, 2, 0, 2));
  EXPECT_NE(msg.find("must be the last node of its range [0, 2)"), std::string::npos) << msg;
  msg = error(shard("conv9", SplitAxis::OutputRows, 0, 2));
  EXPECT_NE(msg.find("no node of that name"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dnn
