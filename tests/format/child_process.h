// Processes for the format tests: running the dnnswarm binary, and measuring a load in a fresh
// process — a forked child runs the work and sends back a plain struct, so its peak RSS (VmHWM) is
// its own and not the test process's history.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>

namespace dnn::testing {

struct Command {
  int status;       // exit code, -1 when it did not exit normally
  std::string out;  // stdout and stderr
};

// Runs `dnnswarm <args>` (the binary of this build).
inline Command run_dnnswarm(const std::string& args) {
  const std::string cmd = std::string(DNN_BINARY) + " " + args + " 2>&1";
  Command r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or -1.
inline int64_t status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field)));
  return -1;
}

// What every child reports besides its own figures.
struct ChildStatus {
  bool ok = false;
  char error[256] = {};
};

// Runs `work(report)` in a forked child and returns the report. Report must be trivially copyable
// and have a `ChildStatus status` member; an exception in the child becomes status.error.
template <class Report, class Work>
Report in_child(Work work) {
  static_assert(std::is_trivially_copyable<Report>::value, "the report crosses a pipe");
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    Report r{};
    try {
      work(r);
      r.status.ok = true;
    } catch (const std::exception& e) {
      std::strncpy(r.status.error, e.what(), sizeof r.status.error - 1);
    }
    const ssize_t written = ::write(fds[1], &r, sizeof r);
    ::_exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  ::close(fds[1]);
  Report r{};
  EXPECT_EQ(::read(fds[0], &r, sizeof r), static_cast<ssize_t>(sizeof r));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return r;
}

}  // namespace dnn::testing
