#include "swarm/devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace dnn {

namespace {

constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
constexpr const char* kNetnsDir = "/var/run/netns";
constexpr int kCfsPeriodUs = 10000;   // 10 ms: a throttled process runs smoothly, not in bursts

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) throw Error("cannot write '" + value + "' to " + path + ": " + std::strerror(errno));
}

// Where this process's own cgroup of `controller` is mounted: new cgroups go below it (the memory
// hierarchy is only writable there).
std::string own_cgroup_dir(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::stringstream list(line.substr(a + 1, b - a - 1));
    std::string c;
    while (std::getline(list, c, ','))
      if (c == controller) {
        const std::string rel = line.substr(b + 1);
        return std::string(kCgroupRoot) + "/" + controller + (rel == "/" ? "" : rel);
      }
  }
  return "";
}

std::string find_tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return std::string(dir) + name;
  return "";
}

// Runs a tool (ip, tc) to completion; throws Error with its output when it fails.
std::string run_tool(const std::vector<std::string>& argv, bool check = true) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (check && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw Error("device emulation: '" + cmd + "' failed: " + out);
  }
  return out;
}

std::string ip_tool() { return find_tool("ip"); }
std::string tc_tool() { return find_tool("tc"); }

// A cgroup directory can stay busy for a moment after its last task was reaped.
void remove_cgroup(const std::string& dir) {
  for (int attempt = 0; attempt < 100 && exists(dir); ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    // Still has tasks (a grandchild that outlived the device process): kill them first.
    std::ifstream procs(dir + "/cgroup.procs");
    for (pid_t p; procs >> p;) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (exists(dir)) std::cerr << "dnnswarm: warning: could not remove cgroup " << dir << "\n";
}

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

// Async-signal-safe decimal formatting for the child between fork and exec.
void format_pid(pid_t pid, char* out) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + pid % 10); while ((pid /= 10) > 0);
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
}

bool write_fd_path(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text));
  ::close(fd);
  return ok;
}

}  // namespace

std::string emulation_unavailable_reason(const DeviceLimits& limits) {
  if (::geteuid() != 0) return "not running as root";
  if (limits.cpu_quota > 0) {
    const std::string d = own_cgroup_dir("cpu");
    if (d.empty() || !exists(d + "/cpu.cfs_quota_us")) return "no cgroup v1 cpu hierarchy under /sys/fs/cgroup/cpu";
  }
  if (limits.memory_mb > 0) {
    const std::string d = own_cgroup_dir("memory");
    if (d.empty() || !exists(d + "/memory.limit_in_bytes"))
      return "no cgroup v1 memory hierarchy under /sys/fs/cgroup/memory";
  }
  if (limits.netns && (ip_tool().empty() || (limits.rate_mbit > 0 && tc_tool().empty())))
    return "'ip' or 'tc' (iproute2) not found";
  return "";
}

// ---- Device ----

Device::Device(const DeviceSet& set, std::string name, DeviceLimits wanted, int index)
    : name_(std::move(name)), limits_(wanted), index_(index) {
  const std::string dir_name = set.tag_ + "-" + name_;
  // Makes <controller>/<dir_name> and records it in `dir` before writing settings, so that destroy()
  // removes it even when a setting fails.
  auto make_cgroup = [&](const char* controller, std::string& dir) {
    const std::string path = own_cgroup_dir(controller) + "/" + dir_name;
    if (::mkdir(path.c_str(), 0755) != 0)
      throw Error(std::string("cannot create ") + controller + " cgroup for device '" + name_ + "': " + std::strerror(errno));
    dir = path;
  };
  try {
    if (limits_.cpu_quota > 0) {
      make_cgroup("cpu", cpu_cg_);
      write_text(cpu_cg_ + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs));
      const int quota = std::max(1000, static_cast<int>(std::lround(limits_.cpu_quota * kCfsPeriodUs)));
      write_text(cpu_cg_ + "/cpu.cfs_quota_us", std::to_string(quota));
    }
    if (limits_.memory_mb > 0) {
      make_cgroup("memory", mem_cg_);
      write_text(mem_cg_ + "/memory.limit_in_bytes", std::to_string(limits_.memory_mb << 20));
    }
  } catch (...) {
    destroy();
    throw;
  }
}

void Device::create_network(const DeviceSet& set) {
  const std::string ip = ip_tool(), tc = tc_tool();
  const std::string idx = std::to_string(index_);
  netns_ = set.tag_ + "-" + idx;
  run_tool({ip, "netns", "add", netns_});
  veth_host_ = set.link_prefix_ + "h" + idx;
  const std::string veth_dev = set.link_prefix_ + "d" + idx;
  run_tool({ip, "link", "add", veth_host_, "type", "veth", "peer", "name", veth_dev});
  run_tool({ip, "link", "set", veth_dev, "netns", netns_});
  run_tool({ip, "link", "set", veth_host_, "master", set.bridge_});
  run_tool({ip, "link", "set", veth_host_, "up"});
  host_address_ = set.bridge_address_;
  device_address_ = "10.78." + std::to_string(set.subnet_) + "." + std::to_string(10 + index_);
  // Commands inside the namespace go through nsenter rather than `ip -n`: ip's namespace switch also
  // remounts / and /sys, which fails where / is not a mount point (a chroot, some containers).
  const std::vector<std::string> in_ns = {find_tool("nsenter"), "--net=" + std::string(kNetnsDir) + "/" + netns_};
  auto inside = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), in_ns.begin(), in_ns.end());
    return argv;
  };
  run_tool(inside({ip, "addr", "add", device_address_ + "/24", "dev", veth_dev}));
  run_tool(inside({ip, "link", "set", "lo", "up"}));
  run_tool(inside({ip, "link", "set", veth_dev, "up"}));
  if (limits_.rate_mbit > 0) {
    // tbf needs a bucket of at least one timer tick of traffic; 10 ms worth, 32 kbit minimum.
    const long burst_bytes = std::max(4096L, static_cast<long>(limits_.rate_mbit * 1e6 / 8 / 100));
    const std::vector<std::string> shape = {"root", "tbf", "rate", std::to_string(limits_.rate_mbit) + "mbit",
                                            "burst", std::to_string(burst_bytes), "latency", "20ms"};
    std::vector<std::string> down = {tc, "qdisc", "add", "dev", veth_host_};   // host -> device
    std::vector<std::string> up = inside({tc, "qdisc", "add", "dev", veth_dev});   // device -> host
    down.insert(down.end(), shape.begin(), shape.end());
    up.insert(up.end(), shape.begin(), shape.end());
    run_tool(down);
    run_tool(up);
  }
}

std::vector<std::string> Device::resources() const {
  std::vector<std::string> r;
  for (const auto& s : {cpu_cg_, mem_cg_}) if (!s.empty()) r.push_back(s);
  if (!netns_.empty()) r.push_back(std::string(kNetnsDir) + "/" + netns_);
  return r;
}

pid_t Device::start(const std::vector<std::string>& argv, const std::string& log_path) {
  if (running()) throw Error("device '" + name_ + "' already runs process " + std::to_string(pid_));
  if (argv.empty()) throw Error("device '" + name_ + "': nothing to start");
  // Everything the child needs is prepared here: between fork and exec only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string cpu_tasks = cpu_cg_.empty() ? "" : cpu_cg_ + "/tasks";
  const std::string mem_procs = mem_cg_.empty() ? "" : mem_cg_ + "/cgroup.procs";
  int netns_fd = -1;
  if (!netns_.empty()) {
    netns_fd = ::open((std::string(kNetnsDir) + "/" + netns_).c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) throw Error("device '" + name_ + "': cannot open network namespace: " + std::strerror(errno));
  }
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    if (netns_fd >= 0) ::close(netns_fd);
    throw Error("device '" + name_ + "': cannot open log " + log_path + ": " + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);                          // Ctrl-C reaches the launcher only; it stops us in order
    ::signal(SIGINT, SIG_DFL);                // not the launcher's handlers: SIGTERM must end us
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);       // never outlive the launcher
    if (::getppid() != parent) ::_exit(1);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    char self[24];
    format_pid(::getpid(), self);
    const char* fail = nullptr;
    // Join the cgroups first: inside another network namespace /sys may look different.
    if (!cpu_tasks.empty() && !write_fd_path(cpu_tasks.c_str(), self)) fail = "cannot join cpu cgroup\n";
    if (!fail && !mem_procs.empty() && !write_fd_path(mem_procs.c_str(), self)) fail = "cannot join memory cgroup\n";
    if (!fail && netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) fail = "cannot enter network namespace\n";
    if (!fail) {
      ::execv(args[0], args.data());
      fail = "exec failed\n";
    }
    ssize_t ignored = ::write(2, fail, std::strlen(fail));
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);   // also here, so a stop() right after start() already reaches the group
  ::close(log_fd);
  if (netns_fd >= 0) ::close(netns_fd);
  pid_ = pid;
  return pid;
}

bool Device::poll_exit(int* status) {
  if (pid_ <= 0) return true;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == 0) return false;
  pid_ = -1;
  if (status) *status = st;
  return true;
}

int Device::stop(double grace_s) {
  if (pid_ <= 0) return 0;
  int status = 0;
  ::kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (poll_exit(&status)) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pid_, SIGKILL);
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

bool Device::oom_killed() const {
  if (mem_cg_.empty()) return false;
  std::stringstream ss(read_text(mem_cg_ + "/memory.oom_control"));
  std::string key;
  int64_t value;
  while (ss >> key >> value)
    if (key == "oom_kill") return value > 0;
  return false;
}

int64_t Device::peak_memory_bytes() const {
  if (mem_cg_.empty()) return -1;
  const std::string s = read_text(mem_cg_ + "/memory.max_usage_in_bytes");
  return s.empty() ? -1 : std::stoll(s);
}

int64_t Device::peak_rss_bytes() const {
  if (pid_ <= 0) return -1;
  std::istringstream ss(read_text("/proc/" + std::to_string(pid_) + "/status"));
  for (std::string line; std::getline(ss, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;   // "VmHWM:  1234 kB"
  return -1;
}

std::string Device::describe_exit(int status) const {
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && oom_killed())
    return "killed by its " + std::to_string(limits_.memory_mb) + " MB memory limit (out of memory)";
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  ::strsignal(WTERMSIG(status)) + ")";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

void Device::destroy() {
  stop(0.5);
  for (auto* cg : {&cpu_cg_, &mem_cg_})
    if (!cg->empty()) {
      remove_cgroup(*cg);
      cg->clear();
    }
  if (!netns_.empty()) {
    // Deleting the namespace destroys the device end of the veth pair, and with it the host end.
    run_tool({ip_tool(), "netns", "del", netns_}, false);
    if (!veth_host_.empty()) run_tool({ip_tool(), "link", "del", veth_host_}, false);
    netns_.clear();
    veth_host_.clear();
  }
}

Device::~Device() { destroy(); }

// ---- DeviceSet ----

DeviceSet::DeviceSet() : tag_("dnnswarm-" + std::to_string(::getpid())), link_prefix_("d" + std::to_string(::getpid())) {
  if (::geteuid() == 0) sweep_stale();
}

DeviceSet::~DeviceSet() {
  stop_all();
  devices_.clear();
  if (!bridge_.empty()) run_tool({ip_tool(), "link", "del", bridge_}, false);
}

Device& DeviceSet::add(const std::string& name, const DeviceLimits& wanted) {
  DeviceLimits limits = wanted;
  if (limits.rate_mbit > 0 && !limits.netns) limits.netns = true;   // a rate needs its own link
  const bool wants_any = limits.cpu_quota > 0 || limits.memory_mb > 0 || limits.netns;
  if (wants_any) {
    const std::string why = emulation_unavailable_reason(limits);
    if (!why.empty()) {
      if (!warned_)
        std::cerr << "dnnswarm: warning: cannot emulate devices (" << why
                  << "); running every node unconstrained\n";
      warned_ = true;
      limits = DeviceLimits{};
    }
  }
  const int index = static_cast<int>(devices_.size());
  std::unique_ptr<Device> d(new Device(*this, name, limits, index));
  if (limits.netns) {
    if (bridge_.empty()) create_bridge();
    try {
      d->create_network(*this);
    } catch (...) {
      d.reset();   // removes what it created
      throw;
    }
  }
  devices_.push_back(std::move(d));
  return *devices_.back();
}

void DeviceSet::stop_all(double grace_s) {
  std::vector<Device*> all;
  for (auto& d : devices_) all.push_back(d.get());
  stop_together(all, grace_s);
}

std::vector<int> DeviceSet::stop_together(const std::vector<Device*>& devices, double grace_s) {
  for (Device* d : devices)
    if (d->running()) ::kill(-d->pid(), SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  std::vector<int> statuses;
  for (Device* d : devices) {
    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    statuses.push_back(d->stop(std::max(0.0, left)));
  }
  return statuses;
}

std::vector<std::string> DeviceSet::host_addresses() const {
  std::vector<std::string> a = {"127.0.0.1"};
  if (!bridge_address_.empty()) a.push_back(bridge_address_);
  return a;
}

void DeviceSet::create_bridge() {
  const std::string ip = ip_tool();
  // Pick a 10.78.X.0/24 no other run uses; the lock keeps two runs from picking the same one.
  const int lock = ::open("/run/lock/dnnswarm-net.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  try {
    const std::string addrs = run_tool({ip, "-4", "-o", "addr", "show"});
    std::set<int> used;
    const std::regex re("inet 10\\.78\\.(\\d+)\\.");
    for (std::sregex_iterator it(addrs.begin(), addrs.end(), re), end; it != end; ++it) used.insert(std::stoi((*it)[1]));
    subnet_ = 0;
    while (used.count(subnet_)) ++subnet_;
    if (subnet_ > 255) throw Error("device emulation: no free 10.78.X.0/24 subnet");
    bridge_ = link_prefix_ + "br";
    bridge_address_ = "10.78." + std::to_string(subnet_) + ".1";
    run_tool({ip, "link", "add", bridge_, "type", "bridge"});
    run_tool({ip, "addr", "add", bridge_address_ + "/24", "dev", bridge_});
    run_tool({ip, "link", "set", bridge_, "up"});
  } catch (...) {
    if (!bridge_.empty()) run_tool({ip, "link", "del", bridge_}, false);
    bridge_.clear();
    bridge_address_.clear();
    if (lock >= 0) ::close(lock);
    throw;
  }
  if (lock >= 0) ::close(lock);
}

void DeviceSet::sweep_stale() {
  const std::regex tagged("dnnswarm-(\\d+)-.*");
  std::smatch m;
  for (const char* controller : {"cpu", "memory"}) {
    const std::string root = own_cgroup_dir(controller);
    if (root.empty()) continue;
    for (const auto& name : list_dir(root))
      if (std::regex_match(name, m, tagged) && !pid_alive(std::stoi(m[1]))) remove_cgroup(root + "/" + name);
  }
  const std::string ip = ip_tool();
  if (ip.empty()) return;
  for (const auto& name : list_dir(kNetnsDir))
    if (std::regex_match(name, m, tagged) && !pid_alive(std::stoi(m[1]))) run_tool({ip, "netns", "del", name}, false);
  const std::string links = run_tool({ip, "-o", "link", "show"}, false);
  const std::regex link_re("^\\d+: (d(\\d+)(br|h\\d+))[@:]");
  std::stringstream ss(links);
  for (std::string line; std::getline(ss, line);)
    if (std::regex_search(line, m, link_re) && !pid_alive(std::stoi(m[2]))) run_tool({ip, "link", "del", m[1]}, false);
}

}  // namespace dnn
