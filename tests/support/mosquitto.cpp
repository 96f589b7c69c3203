#include "support/mosquitto.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

std::string make_temp_dir(const char* what) {
  std::string tmpl = std::string("/tmp/") + what + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  chmod(tmpl.c_str(), 0755);   // mosquitto drops to its own user after reading the config
  return tmpl;
}

// Runs a shell command; throws with its output when it fails.
void run(const std::string& cmd) {
  std::string text;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  if (pclose(p) != 0) throw std::runtime_error("command failed: " + cmd + "\n" + text);
}

}  // namespace

TestCerts::TestCerts() : dir_(make_temp_dir("dnn-certs")) {
  const std::string d = dir_;
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  // Two self-signed CAs: ours and an unrelated one.
  for (const char* ca : {"ca", "other-ca"})
    run("openssl req -x509" + ec + " -days 2 -subj /CN=dnnswarm-test-" + ca + " -keyout " + d + "/" + ca + ".key -out " +
        d + "/" + ca + ".crt");
  // Leaf certificates signed by ours, each with its subjectAltName.
  const std::pair<const char*, const char*> leaves[] = {{"server", "IP:127.0.0.1,DNS:localhost"},
                                                        {"elsewhere", "DNS:elsewhere.invalid"},
                                                        {"client", ""}};
  for (const auto& [name, san] : leaves) {
    const std::string cn = std::string(name) == "client" ? "dnnswarm-test-client" : "dnnswarm-test-" + std::string(name);
    run("openssl req" + ec + " -subj /CN=" + cn + " -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".csr");
    std::ofstream(d + "/" + name + ".ext") << (*san ? std::string("subjectAltName=") + san + "\n" : "basicConstraints=CA:FALSE\n");
    run("openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d + "/ca.crt -CAkey " + d +
        "/ca.key -CAcreateserial -extfile " + d + "/" + name + ".ext -out " + d + "/" + name + ".crt");
  }
  // Mosquitto reads the server's key as its own user.
  run("chmod 644 " + d + "/*");
}

TestCerts::~TestCerts() { (void)!system(("rm -rf " + dir_).c_str()); }

void write_password_file(const std::string& path, const std::vector<std::pair<std::string, std::string>>& logins) {
  {
    std::ofstream out(path);
    for (const auto& [user, password] : logins) out << user << ":" << password << "\n";
  }
  run("mosquitto_passwd -U " + path);
  chmod(path.c_str(), 0644);   // the broker reads it as its own user
}

MosquittoBroker::MosquittoBroker() {
  dir_ = make_temp_dir("dnn-mosquitto");
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

MosquittoBroker::MosquittoBroker(const SecureBroker& secure) {
  dir_ = make_temp_dir("dnn-mosquitto");
  config_path_ = dir_ + "/mosquitto.conf";
  log_path_ = dir_ + "/mosquitto.log";
  port_ = free_loopback_port();
  tls_port_ = free_loopback_port();
  while (tls_port_ == port_) tls_port_ = free_loopback_port();

  // The production config with our ports (loopback only) and files; no ACL file = no ACL lines.
  std::istringstream base(read_file(std::string(DNN_SOURCE_DIR) + "/broker-config/mosquitto-production.conf"));
  std::ofstream conf(config_path_);
  auto key_is = [](const std::string& line, const char* key) { return line.rfind(std::string(key) + " ", 0) == 0; };
  for (std::string line; std::getline(base, line);) {
    if (key_is(line, "listener"))
      line = line.find("127.0.0.1") != std::string::npos ? "listener " + std::to_string(port_) + " 127.0.0.1"
                                                          : "listener " + std::to_string(tls_port_) + " 127.0.0.1";
    else if (key_is(line, "password_file")) line = "password_file " + secure.password_file;
    else if (key_is(line, "acl_file")) line = secure.acl_file.empty() ? "" : "acl_file " + secure.acl_file;
    else if (key_is(line, "cafile")) line = "cafile " + secure.cafile;
    else if (key_is(line, "certfile")) line = "certfile " + secure.server.cert;
    else if (key_is(line, "keyfile")) line = "keyfile " + secure.server.key;
    else if (line == "#require_certificate true" && secure.require_certificate) line = "require_certificate true";
    conf << line << '\n';
  }
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
