// Camera frames end to end, as a real camera would send them: the bundled LeNet-5 swarm
// (deploy/lenet5-swarm.json) on a real Mosquitto, MNIST test digits written as 8-bit gray PNG files
// and published with `mosquitto_pub -f` on the frames topic and on a mapped camera topic, hostile
// frames refused (ctl/error naming the sensor, JSON on the frame's MQTT v5 Response Topic with its
// Correlation Data) and counted while the real frames keep being served.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/npy.h"
#include "engine/model.h"
#include "support/fixtures.h"
#include "swarm_harness.h"
#include "vision/preprocess.h"

namespace dnn::test {
namespace {

namespace fs = std::filesystem;

constexpr int kDigits = 40;

struct TempDir {
  std::string path = "/tmp/frame-intake-test-" + std::to_string(::getpid());
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

// digit<i>.png: round(x * 255) of MNIST test digit i, 8-bit gray, written by Pillow.
void write_digit_pngs(const std::string& dir, int n) {
  const std::string script = dir + "/digits.py";
  std::ofstream(script) << "import sys, numpy as np\nfrom PIL import Image\n"
                           "x = np.load(sys.argv[1])\n"
                           "for i in range(int(sys.argv[3])):\n"
                           "    a = np.rint(x[i].reshape(28, 28) * 255).astype(np.uint8)\n"
                           "    Image.fromarray(a, mode='L').save(f'{sys.argv[2]}/digit{i}.png')\n";
  const std::string cmd = "/usr/bin/python3 " + script + " " + source("models/lenet5/test_inputs_all.npy") + " " + dir +
                          " " + std::to_string(n);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spill(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

int argmax(const Tensor& t) { return static_cast<int>(std::max_element(t.f32(), t.f32() + t.numel()) - t.f32()); }

const Graph& lenet() {
  static const Graph g = load_model(source("models/lenet5/lenet5_mnist_b1.onnx"));
  return g;
}

// The PNG path gives LeNet-5 the tensors the .npy path gives it: same top-1 on every digit.
TEST(FrameIntake, DigitPngsPreprocessToTheTensorPathsInputs) {
  TempDir tmp;
  write_digit_pngs(tmp.path, kDigits);
  const Tensor x = read_npy(source("models/lenet5/test_inputs_all.npy"));
  const Preprocess p = resolve_preprocess({}, lenet().inputs.at(0).shape);
  Executor ex(lenet());
  for (int i = 0; i < kDigits; ++i) {
    const std::string png = slurp(tmp.path + "/digit" + std::to_string(i) + ".png");
    const Tensor from_png = image_to_tensor(png.data(), png.size(), {}, p);
    Tensor from_npy = Tensor::wrap({1, 1, 28, 28}, DType::f32, const_cast<float*>(x.f32()) + i * 784, nullptr);
    float worst = 0;
    for (int k = 0; k < 784; ++k) worst = std::max(worst, std::abs(from_png.f32()[k] - from_npy.f32()[k]));
    EXPECT_LE(worst, 0.5f / 255 + 1e-6f) << "digit " << i;   // the PNG's 8-bit rounding, no more
    EXPECT_EQ(argmax(ex.run({from_png})[0]), argmax(ex.run({from_npy})[0])) << "digit " << i;
  }
}

TEST(FrameIntake, CameraFramesAreServedAndHostileOnesRefusedAndCounted) {
  TempDir tmp;
  write_digit_pngs(tmp.path, kDigits);
  Plan plan = load_plan(source("deploy/lenet5-swarm.json"), lenet());
  NodeConfig base;
  base.frames.topics = {"cams/+/snapshot=+"};   // as a camera already publishes: sensor from the level
  base.frames.max_bytes = 256 << 10;
  InProcessSwarm swarm(plan, lenet(), base);
  NodeRuntime& first = swarm.node(0);
  NodeRuntime& last = swarm.node(swarm.size() - 1);

  BoundedQueue<Inbound> inbox(1000);
  MqttOptions o;
  o.broker = swarm.broker().url();
  o.client_id = "watcher";
  MqttClient watcher(o, [&](Inbound&& m) { inbox.try_push(std::move(m)); });
  watcher.connect();
  watcher.subscribe(Topics().error());
  watcher.subscribe("replies/#");
  watcher.subscribe(Topics().results("lenet5", "+"));

  const std::string pub = "mosquitto_pub -V mqttv5 -q 1 -h 127.0.0.1 -p " + std::to_string(swarm.broker().port());
  auto publish_file = [&](const std::string& topic, const std::string& file, const std::string& extra = "") {
    const std::string cmd = pub + " -t " + topic + " -f " + file + " " + extra;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  };

  // Hostile frames, each with a Response Topic and Correlation Data.
  const std::string digit = slurp(tmp.path + "/digit0.png");
  std::mt19937 rng(3);
  std::string noise(3000, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  spill(tmp.path + "/truncated.png", digit.substr(0, digit.size() / 2));
  spill(tmp.path + "/random.bin", noise);
  spill(tmp.path + "/empty.bin", "");
  spill(tmp.path + "/oversized.png", digit + std::string((2 << 20) + (256 << 10), '\0'));
  {
    // A valid header chunk claiming 60,000 x 60,000 gray pixels; the pixels never come.
    const std::string script = tmp.path + "/huge.py";
    std::ofstream(script) << "import struct, zlib, sys\n"
                             "ihdr = struct.pack('>IIBBBBB', 60000, 60000, 8, 0, 0, 0, 0)\n"
                             "c = lambda k, d: struct.pack('>I', len(d)) + k + d + struct.pack('>I', zlib.crc32(k + d))\n"
                             "open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + c(b'IHDR', ihdr) + "
                             "c(b'IDAT', zlib.compress(b'\\0' * 100)) + c(b'IEND', b''))\n";
    ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + tmp.path + "/huge.png").c_str()), 0);
  }
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {"truncated.png", "corrupt PNG"},
      {"huge.png", "PNG of 60000 x 60000 pixels is over the limit"},
      {"random.bin", "not a JPEG or PNG image"},
      {"empty.bin", "empty payload"},
      {"oversized.png", "is over the limit of 262144 bytes"},
  };

  // Real frames: half on the frames topic, half on the mapped camera topic; hostile ones in between.
  for (int i = 0; i < kDigits; ++i) {
    const std::string file = tmp.path + "/digit" + std::to_string(i) + ".png";
    // The porch camera asks for its answers by MQTT v5 request/response: correlation data = digit.
    publish_file(i % 2 ? "cams/door/snapshot" : "dnnswarm/lenet5/frames/porch", file,
                 i % 2 ? "" : "-D publish response-topic replies/porch -D publish correlation-data " + std::to_string(i));
    if (i % 8 == 0 && i / 8 < static_cast<int>(hostile.size())) {
      const auto& h = hostile[i / 8];
      publish_file("dnnswarm/lenet5/frames/bad", tmp.path + "/" + h.first,
                   "-D publish response-topic replies/bad -D publish correlation-data " + h.first);
    }
  }

  // A TensorMessage frame with a reply_to comes back as a result that carries its sensor.
  const Tensor x = read_npy(source("models/lenet5/test_inputs_all.npy"));
  const Tensor labels = read_npy(source("models/lenet5/test_labels_all.npy"));
  TensorMessage tm;
  tm.request_id = "watcher/1";
  tm.model = "lenet5";
  tm.reply_to = "replies/tensor";
  Tensor x7 = Tensor({1, 1, 28, 28});
  std::copy(x.f32() + 7 * 784, x.f32() + 8 * 784, x7.f32());
  tm.tensors.push_back({"input", x7});
  watcher.publish(Topics().frames("lenet5", "kitchen"), encode(tm));

  // Everything is answered or refused: wait (bounded) for the counters, collecting messages.
  std::map<std::string, std::string> errors, json_replies;   // by request id / correlation data
  std::map<std::string, std::string> porch_replies;          // digit -> JSON result
  std::map<std::string, int> results_per_sensor;             // on <p>/lenet5/results/<sensor>
  std::optional<TensorMessage> result;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < until &&
         (last.stats().processed < kDigits + 1 || errors.size() < hostile.size() ||
          json_replies.size() < hostile.size() || !result || porch_replies.size() < kDigits / 2 ||
          results_per_sensor["porch"] + results_per_sensor["door"] < kDigits)) {
    auto m = inbox.pop_for(std::chrono::milliseconds(200));
    if (!m) continue;
    if (m->topic == "replies/bad") {
      json_replies[m->correlation_data] = *m->payload;
    } else if (m->topic == "replies/porch") {
      porch_replies[m->correlation_data] = *m->payload;
    } else if (m->topic.rfind("dnnswarm/lenet5/results/", 0) == 0) {
      ++results_per_sensor[nlohmann::json::parse(*m->payload).at("sensor").get<std::string>()];
    } else if (m->topic == "replies/tensor") {
      result = std::get<TensorMessage>(decode_message(m->payload));
    } else {
      const Message msg = decode_message(m->payload);
      if (auto* e = std::get_if<ErrorReport>(&msg)) errors[e->message] = e->request_id;
    }
  }
  EXPECT_EQ(last.stats().processed, uint64_t(kDigits + 1));
  EXPECT_EQ(first.stats().frames_accepted, uint64_t(kDigits + 1));
  EXPECT_EQ(first.stats().frames_refused, hostile.size());
  EXPECT_EQ(first.stats().failed + last.stats().failed + first.stats().expired, 0u);

  ASSERT_EQ(errors.size(), hostile.size());
  for (const auto& [file, why] : hostile) {
    bool found = false;
    for (const auto& [message, id] : errors)
      if (message.find("frame from sensor 'bad' refused: ") != std::string::npos &&
          message.find(why) != std::string::npos) {
        found = true;
        EXPECT_EQ(id.rfind("bad/n0-0-0-", 0), 0u) << id;
      }
    EXPECT_TRUE(found) << file << ": no error saying '" << why << "'";
    ASSERT_TRUE(json_replies.count(file)) << "no JSON reply with correlation data " << file;
    const auto j = nlohmann::json::parse(json_replies[file]);
    EXPECT_EQ(j.at("sensor"), "bad");
    EXPECT_EQ(j.at("request_id").get<std::string>().rfind("bad/n0-0-0-", 0), 0u);
    EXPECT_NE(j.at("error").get<std::string>().find(why), std::string::npos) << j.dump();
  }

  // Labelled JSON results, as a camera reads them: every real frame answered on its sensor's results
  // topic, and each porch frame's answer (matched by its correlation data) has the top-1 label the
  // tensor path gives that digit.
  EXPECT_EQ(results_per_sensor["porch"], kDigits / 2);
  EXPECT_EQ(results_per_sensor["door"], kDigits / 2);
  ASSERT_EQ(porch_replies.size(), size_t(kDigits / 2));
  Executor ex(lenet());
  for (const auto& [digit, text] : porch_replies) {
    const int i = std::stoi(digit);
    Tensor xi = Tensor::wrap({1, 1, 28, 28}, DType::f32, const_cast<float*>(x.f32()) + i * 784, nullptr);
    const auto j = nlohmann::json::parse(text);
    EXPECT_EQ(j.at("sensor"), "porch");
    EXPECT_EQ(j.at("top").at(0).at("label"), std::to_string(argmax(ex.run({xi})[0]))) << "digit " << i << ": " << text;
  }

  ASSERT_TRUE(result);
  EXPECT_EQ(result->request_id, "watcher/1");
  EXPECT_EQ(result->sensor, "kitchen");
  EXPECT_EQ(argmax(result->tensors.at(0).tensor), labels.i64()[7]);
}

TEST(FrameIntake, TopicMappingsAndFiltersMatchAsMqttDoes) {
  EXPECT_TRUE(topic_matches("frigate/+/person/snapshot", "frigate/porch/person/snapshot"));
  EXPECT_FALSE(topic_matches("frigate/+/person/snapshot", "frigate/porch/car/snapshot"));
  EXPECT_FALSE(topic_matches("a/b", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b/c", "a/b"));
  EXPECT_TRUE(topic_matches("a/#", "a/b/c"));
  const FrameMapping m = parse_frame_mapping("frigate/porch/person/snapshot=porch");
  EXPECT_EQ(m.filter, "frigate/porch/person/snapshot");
  EXPECT_EQ(m.sensor, "porch");
  auto error_of = [](const std::string& text) {
    try {
      parse_frame_mapping(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("frigate/porch").find("expected TOPIC-FILTER=SENSOR"), std::string::npos);
  EXPECT_NE(error_of("a/b=+").find("the filter has none"), std::string::npos);
  EXPECT_NE(error_of("a/b=x/y").find("must not contain '/'"), std::string::npos);
}

TEST(FrameIntake, NodesThatCannotServeFramesAsConfiguredRefuseToStart) {
  Plan plan = load_plan(source("deploy/lenet5-swarm.json"), lenet());
  const ValueInfo input = lenet().inputs.at(0);
  FrameOptions mapped;
  mapped.topics = {"cams/+/snapshot=+"};
  auto error_of = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(make_frame_intake(mapped, Topics(), plan, "n", 1, false, input), nullptr);   // not the first stage
  EXPECT_EQ(make_frame_intake({}, Topics(), plan, "n", 0, true, input), nullptr);        // a first-stage shard
  EXPECT_NE(error_of([&] { make_frame_intake(mapped, Topics(), plan, "n", 0, true, input); })
                .find("the first stage of 'lenet5' is sharded and takes no frames"),
            std::string::npos);
  plan.input.crop = std::vector<int>{224, 224};
  EXPECT_NE(error_of([&] { make_frame_intake({}, Topics(), plan, "n", 0, false, input); })
                .find("plan for 'lenet5': input preprocessing for a [1,1,28,28] model input: 'crop' [224, 224] "
                      "must be the model's input size [28, 28]"),
            std::string::npos);
}

}  // namespace
}  // namespace dnn::test
