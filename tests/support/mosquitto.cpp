#include "support/mosquitto.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "transport/loopback.h"

namespace dnn::test {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace


MosquittoBroker::MosquittoBroker() {
  char tmpl[] = "/tmp/dnn-mosquitto-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);   // mosquitto drops to its own user after reading the config
  config_path_ = dir_ + "/mosquitto.conf";
  log_path_ = dir_ + "/mosquitto.log";
  port_ = free_loopback_port();

  // The project's config with its listener moved to our port.
  std::istringstream base(read_file(std::string(DNN_SOURCE_DIR) + "/broker-config/mosquitto.conf"));
  std::ofstream conf(config_path_);
  for (std::string line; std::getline(base, line);)
    conf << (line.rfind("listener ", 0) == 0 ? "listener " + std::to_string(port_) + " 127.0.0.1" : line) << '\n';
  conf.close();
  start();
}

MosquittoBroker::~MosquittoBroker() {
  stop();
  unlink(config_path_.c_str());
  unlink(log_path_.c_str());
  rmdir(dir_.c_str());
}

std::string MosquittoBroker::log() const { return read_file(log_path_); }

void MosquittoBroker::start() {
  if (pid_ > 0) return;
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execl("/usr/sbin/mosquitto", "mosquitto", "-c", config_path_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!loopback_port_accepts(port_)) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("mosquitto exited at start (status " + std::to_string(status) + "):\n" + log());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error("mosquitto did not accept connections on port " + std::to_string(port_) +
                               " within 10 s:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void MosquittoBroker::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

}  // namespace dnn::test
