// `dnnswarm swarm` end to end: real Mosquitto, real node processes, the bundled LeNet-5 on real MNIST
// digits. The swarm must answer every frame exactly as one process does, refuse what cannot work
// with a clear message, and leave nothing behind — also when interrupted.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/npy.h"
#include "engine/executor.h"
#include "engine/model.h"
#include "support/fixtures.h"
#include "swarm/devices.h"

namespace dnn {
namespace {

namespace fs = std::filesystem;
using test::source;

struct CliRun {
  int code = -1;
  std::string out, err;
  nlohmann::json result() const {
    std::istringstream ss(out);
    std::string line, last;
    while (std::getline(ss, line))
      if (!line.empty()) last = line;
    return nlohmann::json::parse(last, nullptr, false);
  }
};

std::string scratch(const std::string& name) {
  const std::string dir = "/tmp/local-swarm-test-" + std::to_string(::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs dnnswarm with stdout and stderr kept apart.
CliRun dnnswarm(const std::string& args) {
  const std::string out = scratch("stdout"), err = scratch("stderr");
  const int status = std::system((std::string(DNN_BINARY) + " " + args + " >" + out + " 2>" + err).c_str());
  return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

// Top-1 correct answers of one process running the whole model on the first `n` digits.
int64_t single_process_correct(int64_t n) {
  const Tensor x = read_npy(source("models/lenet5/test_inputs_all.npy"));
  const Tensor labels = read_npy(source("models/lenet5/test_labels_all.npy"));
  Executor ex(load_model(source("models/lenet5/lenet5_mnist_b1.onnx")));
  const int64_t row = x.numel() / x.dim(0);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    Tensor xi = Tensor::wrap({1, 1, 28, 28}, DType::f32, const_cast<float*>(x.f32()) + i * row, nullptr);
    const Tensor y = ex.run({xi})[0];
    correct += std::max_element(y.f32(), y.f32() + y.numel()) - y.f32() == labels.i64()[i];
  }
  return correct;
}

// Cgroups and namespaces a run of process `pid` made ("dnnswarm-<pid>-..."), that still exist.
std::vector<std::string> leftovers_of(pid_t pid) {
  const std::string tag = "dnnswarm-" + std::to_string(pid) + "-";
  std::vector<std::string> found;
  std::string memcg;
  {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);)
      if (line.find(":memory:") != std::string::npos) memcg = "/sys/fs/cgroup/memory" + line.substr(line.rfind(':') + 1);
  }
  for (const std::string& dir : {std::string("/sys/fs/cgroup/cpu"), memcg, std::string("/var/run/netns")}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().filename().string().rfind(tag, 0) == 0) found.push_back(e.path().string());
  }
  if (fs::exists("/sys/class/net/d" + std::to_string(pid) + "br")) found.push_back("bridge d" + std::to_string(pid) + "br");
  return found;
}

std::string write_plan(const std::string& name, const std::string& stages) {
  const std::string path = scratch(name);
  std::ofstream(path) << R"({"model": "lenet5", "model_path": ")" << source("models/lenet5/lenet5_mnist_b1.onnx")
                      << R"(", "stages": )" << stages << "}";
  return path;
}

TEST(LocalSwarm, DefaultSwarmAnswersEveryFrameLikeOneProcess) {
  const CliRun run = dnnswarm("swarm --frames 200");
  ASSERT_EQ(run.code, 0) << run.err;
  const auto r = run.result();
  ASSERT_FALSE(r.is_discarded()) << "no JSON line on stdout:\n" << run.out << run.err;
  EXPECT_EQ(r["frames"], 200);
  EXPECT_EQ(r["lost"], 0);
  EXPECT_GE(r["nodes"].get<int>(), 4);
  EXPECT_EQ(r["correct"].get<int64_t>(), single_process_correct(200));
  EXPECT_DOUBLE_EQ(r["accuracy"].get<double>(), r["correct"].get<double>() / 200);
  EXPECT_GT(r["images_per_s"].get<double>(), 0);
  EXPECT_NE(run.err.find("nodes online"), std::string::npos) << "no progress shown";
}

TEST(LocalSwarm, EmulatedDevicesServeEveryFrame) {
  if (!emulation_unavailable_reason(DeviceLimits{0.3, 256, true, 50}).empty()) GTEST_SKIP() << "needs root and cgroup v1";
  const CliRun run = dnnswarm("swarm --frames 100 --devices-cpu 0.3 --device-memory-mb 256 --netns --rate-mbit 50 --details");
  ASSERT_EQ(run.code, 0) << run.err;
  const auto r = run.result();
  EXPECT_EQ(r["lost"], 0);
  EXPECT_EQ(r["correct"].get<int64_t>(), single_process_correct(100));
  for (const auto& n : r["per_node"]) {
    EXPECT_EQ(n["cpu_quota"], 0.3) << n.dump();
    EXPECT_EQ(n["memory_mb"], 256) << n.dump();
    EXPECT_GT(n["peak_rss_mb"].get<double>(), 1) << n.dump();
  }
}

// The pid of the child of `parent` whose command line holds `--id <id>`, or -1.
pid_t child_with_id(pid_t parent, const std::string& id) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp(e.path().string() + "/stat");   // pid (comm) state ppid ...
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = -1;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::string cmd = slurp(e.path().string() + "/cmdline");
    if (cmd.find(std::string("--id") + '\0' + id + '\0') != std::string::npos) return static_cast<pid_t>(std::stoi(name));
  }
  return -1;
}

TEST(LocalSwarm, KilledNodeIsRestartedAndTheRunGoesOn) {
  const std::string out = scratch("restart.out"), err = scratch("restart.err");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execl(DNN_BINARY, DNN_BINARY, "swarm", "--frames", "8000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (slurp(err).find("frames answered") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_NE(slurp(err).find("frames answered"), std::string::npos) << slurp(err);
  const pid_t node = child_with_id(pid, "conv2-r1");
  ASSERT_GT(node, 0) << "no node conv2-r1 under " << pid;
  ::kill(node, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);   // 8,000 frames: about 20 s on a loaded machine
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(err);
  EXPECT_NE(slurp(err).find("node 'conv2-r1' killed by signal 9 (Killed); restarting it"), std::string::npos)
      << slurp(err);
  const auto r = nlohmann::json::parse(slurp(out), nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << slurp(out);
  EXPECT_EQ(r["frames"], 8000);
  EXPECT_EQ(r["lost"], 0) << slurp(err);
  EXPECT_EQ(r["restarts"], 1);
}

TEST(LocalSwarm, NodeWhoseSliceDoesNotFitItsDeviceIsReportedAndAllIsTornDown) {
  // 16 MB cannot hold even the runtime: the node refuses (or the kernel kills it) and the run ends.
  const std::string plan = write_plan("tiny.json", R"([{"name": "all", "begin": 0, "end": 8, "memory_mb": 16}])");
  const CliRun run = dnnswarm("swarm --plan " + plan + " --input " + source("models/lenet5/test_inputs_all.npy") +
                           " --frames 10");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.err.find("node 'all-r0'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("memory"), std::string::npos) << run.err;
}

TEST(LocalSwarm, BadPlanIsRefusedBeforeAnythingStarts) {
  const std::string plan = write_plan("gap.json", R"([{"name": "a", "begin": 0, "end": 2}, {"name": "b", "begin": 3, "end": 8}])");
  const CliRun run = dnnswarm("swarm --plan " + plan + " --input " + source("models/lenet5/test_inputs_all.npy"));
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.err.find("stage 1 ('b'): gap: nodes [2, 3) belong to no stage"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("nodes online"), std::string::npos) << "started nodes for a bad plan";
}

TEST(LocalSwarm, CtrlCTearsEverythingDown) {
  const bool emulate = emulation_unavailable_reason(DeviceLimits{0.3, 256, true, 0}).empty();
  const std::string out = scratch("ctrlc.out"), err = scratch("ctrlc.err");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (emulate)
      ::execl(DNN_BINARY, DNN_BINARY, "swarm", "--frames", "1000000", "--devices-cpu", "0.3", "--device-memory-mb", "256",
              "--netns", static_cast<char*>(nullptr));
    else
      ::execl(DNN_BINARY, DNN_BINARY, "swarm", "--frames", "1000000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until frames flow, then interrupt.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (slurp(err).find("frames answered") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_NE(slurp(err).find("frames answered"), std::string::npos) << slurp(err);
  if (emulate) {
    EXPECT_FALSE(leftovers_of(pid).empty()) << "the run made no devices to clean up";
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << slurp(err);
  const auto r = nlohmann::json::parse(slurp(out), nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << slurp(out);
  EXPECT_GT(r["frames"].get<int64_t>(), 0);
  EXPECT_EQ(r["lost"], 0);
  const auto left = leftovers_of(pid);
  EXPECT_TRUE(left.empty()) << left.front();
  // No node or broker of that run survives (they were in its process groups; none may be orphaned).
  const std::string ps = [] {
    FILE* p = ::popen("ps -eo args", "r");
    std::string s;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) s.append(buf, n);
    ::pclose(p);
    return s;
  }();
  EXPECT_EQ(ps.find("dnnswarm-" + std::to_string(pid) + "/mosquitto.conf"), std::string::npos) << ps;
}

}  // namespace
}  // namespace dnn
