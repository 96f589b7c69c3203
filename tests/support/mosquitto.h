// A real Mosquitto for tests: starts /usr/sbin/mosquitto on a free loopback port with a config made
// from broker-config/mosquitto.conf, waits until it accepts TCP connections, and kills it in the
// destructor. stop()/start() restart it on the same port (reconnect tests).
//
// A secured one runs broker-config/mosquitto-production.conf instead (logins, ACL, a TLS listener),
// its ports and file paths replaced:
//   TestCerts certs;                                   // a CA and server certificates, made with openssl
//   write_password_file(dir + "/passwd", {{"cam", "secret"}});
//   MosquittoBroker broker(SecureBroker{dir + "/passwd", dir + "/acl", certs.ca(), certs.server()});
//   broker.url() -> tcp://127.0.0.1:<port>   broker.tls_url() -> ssl://127.0.0.1:<tls port>
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace dnn::test {

// A temporary folder with a test PKI made by /usr/bin/openssl (EC P-256 keys, valid 2 days):
//   ca()        the CA certificate clients trust (--cafile)
//   server()    a server certificate signed by it for IP 127.0.0.1 and DNS localhost
//   server_for_other_host()   signed by the same CA, but for "elsewhere.invalid" only
//   other_ca()  an unrelated CA (the "wrong CA" a client may be given)
//   client()    a client certificate signed by ca() (CN dnnswarm-test-client)
// Removed in the destructor. Throws std::runtime_error (with openssl's output) when openssl fails.
class TestCerts {
 public:
  struct Pair {
    std::string cert, key;
  };
  TestCerts();
  ~TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.crt"; }
  std::string other_ca() const { return dir_ + "/other-ca.crt"; }
  Pair server() const { return {dir_ + "/server.crt", dir_ + "/server.key"}; }
  Pair server_for_other_host() const { return {dir_ + "/elsewhere.crt", dir_ + "/elsewhere.key"}; }
  Pair client() const { return {dir_ + "/client.crt", dir_ + "/client.key"}; }

 private:
  std::string dir_;
};

// What a secured broker uses: a mosquitto_passwd file, an ACL file (empty: none, every login may
// do everything) and the TLS listener's CA and server certificate.
struct SecureBroker {
  std::string password_file;
  std::string acl_file;
  std::string cafile;
  TestCerts::Pair server;
  bool require_certificate = false;   // the TLS listener asks for a client certificate signed by cafile
};

// Writes a Mosquitto password file (hashed with `mosquitto_passwd -U`) for these user/password pairs.
void write_password_file(const std::string& path, const std::vector<std::pair<std::string, std::string>>& logins);

class MosquittoBroker {
 public:
  // Starts the broker; throws std::runtime_error with its log when it does not come up.
  MosquittoBroker();
  // The production config: logins required on both listeners, the ACL, TLS on tls_port().
  explicit MosquittoBroker(const SecureBroker& secure);
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  int port() const { return port_; }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  int tls_port() const { return tls_port_; }   // 0 without TLS
  std::string tls_url() const { return "ssl://127.0.0.1:" + std::to_string(tls_port_); }
  const std::string& log_path() const { return log_path_; }
  std::string log() const;   // what the broker has logged so far

  void stop();    // SIGTERM, then SIGKILL after 3 s; no-op when stopped
  void start();   // on the same port

 private:
  std::string dir_, config_path_, log_path_;
  int port_ = 0, tls_port_ = 0;
  pid_t pid_ = -1;
};


}  // namespace dnn::test
