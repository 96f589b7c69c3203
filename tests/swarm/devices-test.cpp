// Emulated devices: limits are really enforced, failures are reported clearly and nothing is left
// behind. These need root and cgroup v1 (the project's machines); elsewhere they are skipped.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <thread>

#include "core/error.h"
#include "swarm/devices.h"

namespace dnn {
namespace {

bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string log_path(const std::string& name) { return "/tmp/devices-test-" + std::to_string(::getpid()) + "-" + name + ".log"; }

std::string read_file(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

#define REQUIRE_EMULATION(limits)                                                \
  do {                                                                           \
    const std::string why = emulation_unavailable_reason(limits);                \
    if (!why.empty()) GTEST_SKIP() << "device emulation unavailable: " << why;   \
  } while (0)

int wait_exit(Device& d, double timeout_s) {
  int status = -1;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (d.poll_exit(&status)) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "device '" << d.name() << "' did not exit within " << timeout_s << " s";
  return d.stop(0);
}

// A TCP listener on the host at `address`, on a free port.
struct Listener {
  int fd = -1;
  int port = 0;
  explicit Listener(const std::string& address) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::listen(fd, 4);
  }
  ~Listener() { ::close(fd); }
  // Accepts one connection and reads it to the end; returns the bytes received.
  size_t receive_all() {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return 0;
    size_t total = 0;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(c, buf, sizeof buf)) > 0) total += n;
    ::close(c);
    return total;
  }
};

TEST(Devices, CpuQuotaThrottlesABusyProcess) {
  DeviceLimits lim;
  lim.cpu_quota = 0.1;   // the smallest quota at a 10 ms period; below any fair share on a busy machine
  REQUIRE_EMULATION(lim);
  DeviceSet set;
  Device& d = set.add("busy", lim);
  ASSERT_TRUE(d.emulated());
  d.start({"/bin/sh", "-c", "i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done"}, log_path("busy"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  // cpu.stat counts the periods in which the quota stopped the process.
  const std::string stat = read_file(d.resources().at(0) + "/cpu.stat");
  d.stop(0);
  std::istringstream ss(stat);
  std::string key;
  long value = 0, throttled = -1, periods = -1;
  while (ss >> key >> value) {
    if (key == "nr_throttled") throttled = value;
    if (key == "nr_periods") periods = value;
  }
  EXPECT_GT(periods, 20) << stat;
  EXPECT_GT(throttled, periods / 2) << stat;   // at 0.1 core a busy loop is stopped in most 10 ms periods
}

// Runs a process in `d` that touches `mb` MB (a bytes object of ones: zero pages from calloc would
// not count) and returns its wait status.
int touch_memory(Device& d, int mb) {
  d.start({"/usr/bin/python3", "-c", "x = b'\\x01' * (" + std::to_string(mb) + " << 20); print(len(x))"}, log_path(d.name()));
  return wait_exit(d, 30);
}

TEST(Devices, ProcessOverItsMemoryLimitIsKilledAndReported) {
  DeviceLimits lim;
  lim.memory_mb = 48;
  REQUIRE_EMULATION(lim);
  DeviceSet set;
  Device& d = set.add("small", lim);
  const int status = touch_memory(d, 200);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << d.describe_exit(status);
  EXPECT_TRUE(d.oom_killed());
  EXPECT_EQ(d.describe_exit(status), "killed by its 48 MB memory limit (out of memory)");
  EXPECT_GE(d.peak_memory_bytes(), 40ll << 20);
  EXPECT_LE(d.peak_memory_bytes(), 48ll << 20);
}

TEST(Devices, ProcessWithinItsMemoryLimitRunsNormally) {
  DeviceLimits lim;
  lim.memory_mb = 256;
  REQUIRE_EMULATION(lim);
  DeviceSet set;
  Device& d = set.add("roomy", lim);
  const int status = touch_memory(d, 100);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << d.describe_exit(status);
  EXPECT_FALSE(d.oom_killed());
  EXPECT_GE(d.peak_memory_bytes(), 100ll << 20);
}

TEST(Devices, NamespaceReachesTheHostOnlyThroughItsRateLimitedLink) {
  DeviceLimits lim;
  lim.netns = true;
  lim.rate_mbit = 20;
  REQUIRE_EMULATION(lim);
  DeviceSet set;
  Device& d = set.add("net", lim);
  ASSERT_NE(d.host_address(), "127.0.0.1");
  ASSERT_EQ(set.host_addresses().size(), 2u);
  EXPECT_EQ(set.host_addresses()[1], d.host_address());

  // 2.5 MB through 20 Mbit/s takes about a second; loopback would take milliseconds.
  Listener host(d.host_address());
  const std::string target = "/dev/tcp/" + d.host_address() + "/" + std::to_string(host.port);
  d.start({"/bin/bash", "-c", "head -c 2500000 /dev/zero > " + target}, log_path("net"));
  const auto t0 = std::chrono::steady_clock::now();
  const size_t got = host.receive_all();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int status = wait_exit(d, 10);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(log_path("net"));
  EXPECT_EQ(got, 2500000u);
  const double mbit = got * 8 / seconds / 1e6;
  EXPECT_GT(mbit, 8);   // well above: the sender needs CPU, and the machine may be busy
  EXPECT_LT(mbit, 24);

  // The namespace has its own loopback: a listener on the host's 127.0.0.1 is out of reach.
  Listener local("127.0.0.1");
  d.start({"/bin/bash", "-c", "echo hi > /dev/tcp/127.0.0.1/" + std::to_string(local.port)}, log_path("net"));
  const int refused = wait_exit(d, 10);
  EXPECT_FALSE(WIFEXITED(refused) && WEXITSTATUS(refused) == 0);
}

TEST(Devices, TeardownLeavesNoCgroupNamespaceLinkOrProcess) {
  DeviceLimits lim;
  lim.cpu_quota = 0.15;
  lim.memory_mb = 64;
  lim.netns = true;
  lim.rate_mbit = 50;
  REQUIRE_EMULATION(lim);
  std::vector<std::string> resources;
  std::vector<pid_t> pids;
  std::string tag;
  {
    DeviceSet set;
    tag = set.tag();
    for (int i = 0; i < 3; ++i) {
      Device& d = set.add("dev" + std::to_string(i), lim);
      pids.push_back(d.start({"/bin/sleep", "60"}, log_path("sleep")));
      for (const auto& r : d.resources()) resources.push_back(r);
    }
    ASSERT_EQ(resources.size(), 9u);   // cpu cgroup, memory cgroup, namespace per device
    for (const auto& r : resources) EXPECT_TRUE(path_exists(r)) << r;
  }
  for (const auto& r : resources) EXPECT_FALSE(path_exists(r)) << r << " left behind";
  for (pid_t p : pids) EXPECT_NE(::kill(p, 0), 0) << "process " << p << " still alive";
  // No link of this run remains ("d<pid>br", "d<pid>h<i>").
  const std::string prefix = "d" + std::to_string(::getpid());
  EXPECT_FALSE(path_exists("/sys/class/net/" + prefix + "br"));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(path_exists("/sys/class/net/" + prefix + "h" + std::to_string(i)));
}

TEST(Devices, ALaterRunSweepsWhatAKilledRunLeftBehind) {
  DeviceLimits lim;
  lim.cpu_quota = 0.15;
  lim.memory_mb = 64;
  lim.netns = true;
  REQUIRE_EMULATION(lim);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t run = ::fork();
  if (run == 0) {   // a launcher that gets SIGKILLed before it can clean up
    DeviceSet set;
    std::string paths;
    for (const auto& r : set.add("orphan", lim).resources()) paths += r + "\n";
    ssize_t n = ::write(fds[1], paths.data(), paths.size());
    ::close(fds[1]);
    ::pause();
    ::_exit(n < 0);
  }
  ::close(fds[1]);
  std::string paths;
  char buf[1024];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) paths.append(buf, n);
  ::close(fds[0]);
  ::kill(run, SIGKILL);
  ::waitpid(run, nullptr, 0);
  std::vector<std::string> left;
  std::istringstream ss(paths);
  for (std::string p; std::getline(ss, p);) left.push_back(p);
  ASSERT_EQ(left.size(), 3u);
  for (const auto& p : left) ASSERT_TRUE(path_exists(p)) << p;
  DeviceSet::sweep_stale();
  for (const auto& p : left) EXPECT_FALSE(path_exists(p)) << p << " not swept";
  EXPECT_FALSE(path_exists("/sys/class/net/d" + std::to_string(run) + "br"));
}

TEST(Devices, ExitOfAProcessIsDescribed) {
  DeviceSet set;
  Device& d = set.add("plain", DeviceLimits{});
  EXPECT_FALSE(d.emulated());
  d.start({"/bin/sh", "-c", "exit 3"}, log_path("plain"));
  EXPECT_EQ(d.describe_exit(wait_exit(d, 10)), "exited with status 3");
  d.start({"/bin/sleep", "60"}, log_path("plain"));
  EXPECT_THROW(d.start({"/bin/true"}, log_path("plain")), Error);
  const int status = d.stop(0.5);
  EXPECT_EQ(d.describe_exit(status), "killed by signal 15 (Terminated)");
}

TEST(Devices, WithoutRootEmulationIsRefusedWithAReason) {
  if (::geteuid() != 0) {
    EXPECT_EQ(emulation_unavailable_reason(DeviceLimits{0.2, 64, false, 0}), "not running as root");
    return;
  }
  // Ask from a child that dropped root.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    const std::string why = emulation_unavailable_reason(DeviceLimits{0.2, 64, false, 0});
    ssize_t n = ::write(fds[1], why.data(), why.size());
    ::_exit(n < 0);
  }
  ::close(fds[1]);
  char buf[256] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "not running as root");
}

}  // namespace
}  // namespace dnn
