// A real Mosquitto for tests: starts /usr/sbin/mosquitto on a free loopback port with a config made
// from broker-config/mosquitto.conf, waits until it accepts TCP connections, and kills it in the
// destructor. stop()/start() restart it on the same port (reconnect tests).
#pragma once
#include <sys/types.h>

#include <string>

namespace dnn::test {

class MosquittoBroker {
 public:
  // Starts the broker; throws std::runtime_error with its log when it does not come up.
  MosquittoBroker();
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  int port() const { return port_; }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  const std::string& log_path() const { return log_path_; }
  std::string log() const;   // what the broker has logged so far

  void stop();    // SIGTERM, then SIGKILL after 3 s; no-op when stopped
  void start();   // on the same port

 private:
  std::string dir_, config_path_, log_path_;
  int port_ = 0;
  pid_t pid_ = -1;
};


}  // namespace dnn::test
