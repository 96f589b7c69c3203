// Emulated small devices on one Linux machine: each device is a child process inside its own cgroup v1
// CPU quota and memory limit, optionally in its own network namespace whose only link to the host
// is a rate-limited veth pair (tbf both ways; this kernel has no netem, so no added delay).
// The measured faithfulness of this is in ../shared/notes/device-emulation.md.
//
// Everything one run creates carries the run's tag "dnnswarm-<pid>" (network links "d<pid>...") so
// parallel runs never collide, and is removed by ~DeviceSet: on normal exit, on exceptions and after
// SIGINT/SIGTERM (the caller turns those into an orderly return). Children get SIGKILL if the
// launcher dies, and a later run sweeps cgroups and namespaces left by runs that were killed.
//
// Emulation needs root, the cgroup v1 cpu and memory hierarchies, and `ip`/`tc` for namespaces.
// Without them devices run unconstrained and DeviceSet says so once on stderr, so the local swarm
// still works anywhere.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dnn {

struct DeviceLimits {
  double cpu_quota = 0;     // cores (0.15 = 15 % of one core); 0 = unconstrained
  int64_t memory_mb = 0;    // hard limit; a process touching more is killed at once. 0 = none
  bool netns = false;       // own network namespace, reaching the host through a veth pair
  double rate_mbit = 0;     // with netns: tbf rate limit in each direction; 0 = unlimited
};

// "" when devices with `limits` can be emulated here, else why not (not root, no cgroup v1, no ip).
std::string emulation_unavailable_reason(const DeviceLimits& limits);

class DeviceSet;

class Device {
 public:
  const std::string& name() const { return name_; }
  const DeviceLimits& limits() const { return limits_; }   // what is actually enforced
  bool emulated() const { return !cpu_cg_.empty() || !mem_cg_.empty() || !netns_.empty(); }
  // The address a process inside this device uses to reach the host (the broker): 127.0.0.1 unless
  // the device has its own network namespace.
  std::string host_address() const { return host_address_; }
  // The cgroup and namespace paths/names this device created (for tests and diagnostics).
  std::vector<std::string> resources() const;

  // Starts argv[0] (a path) inside the device, stdout and stderr to `log_path` (appended). One
  // process per device at a time. Throws Error if it cannot be started.
  pid_t start(const std::vector<std::string>& argv, const std::string& log_path);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Reaps the process if it ended; returns true (and its wait status) once it has.
  bool poll_exit(int* status);
  // SIGTERM, up to `grace_s` seconds, then SIGKILL; reaps. Returns the wait status (0 if none ran).
  int stop(double grace_s = 2.0);
  // "exited with status 1", "killed by its 256 MB memory limit", "killed by signal 9"...
  std::string describe_exit(int status) const;
  bool oom_killed() const;                 // the memory cgroup killed a process (memory.oom_control)
  int64_t peak_memory_bytes() const;       // memory.max_usage_in_bytes; -1 without a memory cgroup
  int64_t peak_rss_bytes() const;          // VmHWM of the running process; -1 when none runs

  ~Device();

 private:
  friend class DeviceSet;
  Device(const DeviceSet& set, std::string name, DeviceLimits wanted, int index);
  void create_network(const DeviceSet& set);
  void destroy();

  std::string name_;
  DeviceLimits limits_;
  int index_ = 0;
  std::string cpu_cg_, mem_cg_;        // cgroup directories ("" = none)
  std::string netns_, veth_host_;      // namespace and host-side link ("" = none)
  std::string host_address_ = "127.0.0.1";
  std::string device_address_;
  pid_t pid_ = -1;
};

class DeviceSet {
 public:
  DeviceSet();
  ~DeviceSet();   // stops every process and removes every cgroup, namespace and link
  DeviceSet(const DeviceSet&) = delete;
  DeviceSet& operator=(const DeviceSet&) = delete;

  // Creates a device. Limits that cannot be enforced here are dropped with one warning on stderr.
  Device& add(const std::string& name, const DeviceLimits& limits);
  std::vector<std::unique_ptr<Device>>& devices() { return devices_; }
  // SIGTERM to every running process, then SIGKILL to those still running after `grace_s`.
  void stop_all(double grace_s = 2.0);
  // The same for some devices; returns their wait statuses in order.
  static std::vector<int> stop_together(const std::vector<Device*>& devices, double grace_s);
  // Addresses a broker must listen on so every device reaches it: 127.0.0.1 plus, once a device has
  // its own namespace, the host end of the run's bridge.
  std::vector<std::string> host_addresses() const;
  const std::string& tag() const { return tag_; }

  // Removes what runs that no longer exist left behind (they were killed before cleaning up).
  static void sweep_stale();

 private:
  friend class Device;
  void create_bridge();

  std::string tag_;             // "dnnswarm-<pid>"
  std::string link_prefix_;     // "d<pid>" (link names are limited to 15 characters)
  std::string bridge_, bridge_address_;   // "" until a device needs a namespace
  int subnet_ = -1;             // 10.78.<subnet>.0/24
  bool warned_ = false;
  std::vector<std::unique_ptr<Device>> devices_;
};

}  // namespace dnn
