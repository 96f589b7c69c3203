// How a program reaches its MQTT broker: the one set of connection settings every dnnswarm program
// takes (node, infer, swarm, ...), named as Mosquitto's own clients name them. The CLI fills it
// from flags and config files (cli/common.h); MqttClient turns it into Paho connect options.
//
//   BrokerConnection c;                       // tcp://127.0.0.1:1883, anonymous
//   c = BrokerConnection("ssl://hub:8883");   // a URL converts, so `opts.broker = url` keeps working
//   c.urls.push_back("ssl://hub2:8883");      // failover: tried in this order
//   c.username = "cam";  c.password = "...";  c.cafile = "/etc/dnnswarm/ca.crt";
#pragma once
#include <string>
#include <vector>

namespace dnn {

struct BrokerConnection {
  // tcp:// or mqtt:// (plain), ssl:// or mqtts:// (TLS); several = failover, tried in order.
  std::vector<std::string> urls = {"tcp://127.0.0.1:1883"};
  std::string username;         // empty: anonymous
  std::string password;         // read from a file or DNNSWARM_PASSWORD, never from argv
  std::string cafile;           // CA bundle for ssl:// (empty: the system's trust store)
  std::string cert, key;        // client certificate and its key (PEM), for brokers that ask for one
  bool insecure = false;        // TLS without checking that the certificate names the host

  BrokerConnection() = default;
  BrokerConnection(std::string url) : urls{std::move(url)} {}   // NOLINT: implicit on purpose
  BrokerConnection(const char* url) : urls{url} {}              // NOLINT

  bool tls() const;             // any URL is ssl:// or mqtts://
  // "tcp://a:1883" or "ssl://a:8883, ssl://b:8883": how error messages name the broker.
  std::string describe() const;
  // Throws Error naming the problem: no URL, an unknown scheme, no host or port, a key without a
  // certificate, TLS files that cannot be read.
  void check() const;
};

// Splits comma-separated lists ("tcp://a:1883,tcp://b:1883") and drops blanks, keeping the order.
std::vector<std::string> split_broker_urls(const std::vector<std::string>& values);

// The environment variable a password may come from (so it never shows in `ps`).
constexpr const char* kPasswordEnv = "DNNSWARM_PASSWORD";

// Why a connect failed, in words, for one clear error line. `rc` is Paho's return code, `reason` the
// MQTT v5 CONNACK reason code (0 when none came), `tls_error` what OpenSSL said (empty if nothing).
// e.g. "refused the login for user 'cam' (bad user name or password)".
std::string describe_connect_failure(const BrokerConnection& c, int rc, int reason, const std::string& tls_error,
                                     const std::string& paho_message);

// Why a TLS handshake with `url` (ssl:// or mqtts://), checked as `c` says (CA, host name unless
// insecure, client certificate), fails, in OpenSSL's words ("hostname mismatch", "certificate
// verify failed", "wrong version number"...); "" when it succeeds or nothing answers on the port
// within 2 s (unreachable is not a TLS problem). Paho does not say why its own handshake failed.
std::string tls_handshake_error(const std::string& url, const BrokerConnection& c);

// An MQTT v5 failure reason code (CONNACK, SUBACK, PUBACK, DISCONNECT: 0x80 and up) in words:
// 0x86 "bad user name or password", 0x87 "not authorized", ...
std::string mqtt_reason_words(int reason);

// True when retrying cannot help (the broker answered: login refused, TLS rejected) — as opposed
// to a broker that is not (yet) reachable.
bool connect_failure_is_final(int rc, int reason, const std::string& tls_error);

}  // namespace dnn
