#include "transport/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/error.h"

namespace dnn {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool is_tls_url(const std::string& url) { return starts_with(url, "ssl://") || starts_with(url, "mqtts://"); }

void check_readable(const std::string& path, const char* what) {
  if (!path.empty() && ::access(path.c_str(), R_OK) != 0)
    throw Error(std::string(what) + " '" + path + "' cannot be read");
}

// OpenSSL's reason out of "<thread>:error:0A000086:SSL routines:<function>:certificate verify
// failed:<file>:<line>:": the part people can read.
std::string openssl_reason(const std::string& e) {
  const auto at = e.find("error:");
  if (at != std::string::npos) {
    size_t field = at, colons = 0;
    while (colons < 4 && (field = e.find(':', field + 1)) != std::string::npos) ++colons;
    if (field != std::string::npos) {
      const auto end = e.find(':', field + 1);
      const std::string reason = e.substr(field + 1, end == std::string::npos ? std::string::npos : end - field - 1);
      if (!reason.empty()) return reason;
    }
  }
  std::string trimmed = e;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ')) trimmed.pop_back();
  return trimmed;
}

// What OpenSSL's message means for the user; OpenSSL's reason follows in parentheses.
std::string tls_words(const BrokerConnection& c, const std::string& e) {
  auto has = [&](const char* s) { return e.find(s) != std::string::npos; };
  std::string what;
  if (has("hostname mismatch") || has("IP address mismatch"))
    what = "its TLS certificate is not issued for this host name (connect by the name it names, or --insecure)";
  else if (has("certificate verify failed"))
    what = c.cafile.empty() ? "its TLS certificate is not signed by a CA this system trusts (give --cafile)"
                            : "its TLS certificate is not signed by the CA in " + c.cafile;
  else if (has("wrong version number") || has("packet length too long") || has("unexpected eof"))
    what = "it does not speak TLS on this port (a tcp:// listener?)";
  else if (has("alert certificate required") || has("peer did not return a certificate"))
    what = "it requires a client certificate (give --cert and --key)";
  else if (has("alert unknown ca") || has("alert bad certificate"))
    what = "it rejected our client certificate";
  else
    what = "the TLS handshake failed";
  return what + " (" + openssl_reason(e) + ")";
}

}  // namespace

std::string mqtt_reason_words(int reason) {
  switch (reason) {
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8C: return "bad authentication method";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    case 0x9F: return "connection rate exceeded";
    default: {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", reason & 0xff);
      return std::string("reason code ") + hex;
    }
  }
}

bool BrokerConnection::tls() const {
  for (const auto& u : urls)
    if (is_tls_url(u)) return true;
  return false;
}

std::string BrokerConnection::describe() const {
  std::string s;
  for (const auto& u : urls) s += (s.empty() ? "" : ", ") + u;
  return s.empty() ? "(no broker)" : s;
}

void BrokerConnection::check() const {
  if (urls.empty()) throw Error("no broker URL given (--broker tcp://host:1883 or ssl://host:8883)");
  for (const auto& u : urls) {
    const bool known = starts_with(u, "tcp://") || starts_with(u, "mqtt://") || is_tls_url(u);
    if (!known) throw Error("broker URL '" + u + "' must start with tcp://, mqtt://, ssl:// or mqtts://");
    const std::string rest = u.substr(u.find("://") + 3);
    const auto colon = rest.rfind(':');
    if (rest.empty() || colon == 0 || colon == std::string::npos || colon + 1 == rest.size() ||
        rest.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      throw Error("broker URL '" + u + "' needs a host and a port, e.g. " + u.substr(0, u.find("://") + 3) +
                  "host:" + (is_tls_url(u) ? "8883" : "1883"));
  }
  if (!key.empty() && cert.empty()) throw Error("--key needs --cert (the client certificate it belongs to)");
  if (!cert.empty() && key.empty()) throw Error("--cert needs --key (the private key of the client certificate)");
  check_readable(cafile, "CA file");
  check_readable(cert, "certificate");
  check_readable(key, "key");
}

std::vector<std::string> split_broker_urls(const std::vector<std::string>& values) {
  std::vector<std::string> urls;
  for (const auto& v : values) {
    size_t begin = 0;
    while (begin <= v.size()) {
      size_t end = v.find(',', begin);
      if (end == std::string::npos) end = v.size();
      std::string u = v.substr(begin, end - begin);
      const auto first = u.find_first_not_of(" \t"), last = u.find_last_not_of(" \t");
      if (first != std::string::npos) urls.push_back(u.substr(first, last - first + 1));
      begin = end + 1;
    }
  }
  return urls;
}

namespace {

// A TCP connection to host:port within `timeout_ms`, as a blocking socket with that receive and
// send timeout; -1 when nothing answers.
int connect_tcp(const std::string& host, const std::string& port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    const bool ok = (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) &&
                    ::poll(&p, 1, timeout_ms) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    if (!ok) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd >= 0) {
    ::fcntl(fd, F_SETFL, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return fd;
}

}  // namespace

std::string tls_handshake_error(const std::string& url, const BrokerConnection& c) {
  const auto scheme = url.find("://");
  const auto colon = url.rfind(':');
  if (scheme == std::string::npos || colon <= scheme + 3) return "";
  std::string host = url.substr(scheme + 3, colon - scheme - 3);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int fd = connect_tcp(host, url.substr(colon + 1), 2000);
  if (fd < 0) return "";

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  std::string error;
  auto openssl_error = [] {
    char buf[256] = "";
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    return std::string(buf);
  };
  if (!ctx) {
    ::close(fd);
    return "";
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (c.cafile.empty() ? SSL_CTX_set_default_verify_paths(ctx.get()) != 1
                       : SSL_CTX_load_verify_locations(ctx.get(), c.cafile.c_str(), nullptr) != 1)
    error = "cannot load the CA file: " + openssl_error();
  if (error.empty() && !c.cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), c.cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), c.key.c_str(), SSL_FILETYPE_PEM) != 1))
    error = "cannot load the client certificate or key: " + openssl_error();
  if (error.empty()) {
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
    SSL_set_fd(ssl.get(), fd);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    if (!c.insecure) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
      if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
    ERR_clear_error();
    if (SSL_connect(ssl.get()) != 1) {
      const long verify = SSL_get_verify_result(ssl.get());
      error = verify != X509_V_OK ? std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify)
                                  : openssl_error();
      if (error.find(":00000000:") != std::string::npos || error.empty())
        error = "unexpected eof while reading";   // the peer closed without a TLS answer
    } else {
      // With TLS 1.3 the server judges our certificate after the client's handshake is done: its
      // refusal arrives as an alert on the first read (a broker that accepted us waits for CONNECT,
      // and the read times out).
      char byte;
      const int n = SSL_read(ssl.get(), &byte, 1);
      if (n <= 0 && SSL_get_error(ssl.get(), n) == SSL_ERROR_SSL) error = openssl_error();
      else SSL_shutdown(ssl.get());
    }
  }
  ::close(fd);
  return error;
}

bool connect_failure_is_final(int rc, int reason, const std::string& tls_error) {
  (void)rc;
  return reason >= 0x80 || !tls_error.empty();
}

std::string describe_connect_failure(const BrokerConnection& c, int rc, int reason, const std::string& tls_error,
                                     const std::string& paho_message) {
  const std::string user = c.username.empty() ? "anonymous clients" : "user '" + c.username + "'";
  // Mosquitto 2.0 answers a wrong password with 0x87 too, not 0x86.
  if (reason == 0x87)
    return "refused the login for " + user + " (not authorized: " +
           (c.username.empty() ? "it requires --username and a password)" : "wrong password, or the user may not connect)");
  if (reason == 0x86 || reason == 0x8C) return "refused the login for " + user + " (" + mqtt_reason_words(reason) + ")";
  if (reason >= 0x80) return "refused the connection (" + mqtt_reason_words(reason) + ")";
  if (!tls_error.empty()) return "could not be reached over TLS: " + tls_words(c, tls_error);
  (void)rc;
  return "could not be reached (" + (paho_message.empty() ? std::string("no answer") : paho_message) + ")";
}

}  // namespace dnn
