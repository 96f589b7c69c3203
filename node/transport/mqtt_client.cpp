#include "transport/mqtt_client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <mqtt/async_client.h>

#include "core/error.h"

namespace dnn {

void log_line(const std::string& who, const std::string& what) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::ostringstream line;
  line << std::put_time(&tm, "%H:%M:%S") << '.' << std::setw(3) << std::setfill('0') << ms << ' ' << who << ": "
       << what << '\n';
  std::cerr << line.str() << std::flush;
}

namespace {
constexpr auto kAckTimeout = std::chrono::seconds(10);

int url_port(const std::string& url) {
  const auto colon = url.rfind(':');
  if (colon == std::string::npos) return 1883;
  try {
    return std::stoi(url.substr(colon + 1));
  } catch (const std::exception&) {
    return 1883;
  }
}

// Paho C writes each PUBACK and each PUBLISH separately and leaves Nagle's algorithm on, so a
// PUBLISH that follows a PUBACK waits for the broker's delayed ACK: 40 ms per hop, measured. Paho
// has no socket-option hook, so after each connect we set TCP_NODELAY on this process's sockets to
// the broker's port (all of them MQTT connections to the broker).
void disable_nagle_towards(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* e = readdir(dir)) {
    const int fd = atoi(e->d_name);
    struct stat st{};
    if (fd <= 2 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    int peer_port = -1;
    if (peer.ss_family == AF_INET) peer_port = ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port);
    if (peer.ss_family == AF_INET6) peer_port = ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
    const int one = 1;
    if (peer_port == port) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  closedir(dir);
}
}  // namespace

MqttClient::MqttClient(MqttOptions opts, MessageHandler on_message)
    : opts_(std::move(opts)),
      on_message_(std::move(on_message)),
      outbox_(opts_.outbox_capacity) {
  if (opts_.client_id.empty()) throw Error("MQTT client id must not be empty");
  mqtt::create_options co(MQTTVERSION_5);   // without it the v5 connect fails (-16)
  // Paho counts every publish it has not finished as "buffered", connected or not, and throws past
  // the limit (default 100). Our window keeps at most max_inflight outstanding; the rest is room for
  // the birth/offline messages published outside the window.
  co.set_max_buffered_messages(opts_.max_inflight + 64);
  opts_.broker.check();
  // Paho takes the first URL here and the whole list (failover) in the connect options.
  cli_ = std::make_unique<mqtt::async_client>(opts_.broker.urls.front(), opts_.client_id, co);

  cli_->set_message_callback([this](mqtt::const_message_ptr m) {
    try {
      Inbound in;
      in.topic = m->get_topic();
      in.payload = m->get_payload_ref().ptr();
      const mqtt::properties& props = m->get_properties();
      if (props.contains(mqtt::property::RESPONSE_TOPIC))
        in.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
      if (props.contains(mqtt::property::CORRELATION_DATA))
        in.correlation_data = mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA);
      if (props.contains(mqtt::property::CONTENT_TYPE))
        in.content_type = mqtt::get<std::string>(props, mqtt::property::CONTENT_TYPE);
      on_message_(std::move(in));
    } catch (const std::exception& e) {
      log_line(opts_.client_id, std::string("message handler failed: ") + e.what());
    }
  });
  cli_->set_connected_handler([this](const std::string& cause) {
    for (const auto& url : opts_.broker.urls) disable_nagle_towards(url_port(url));
    resubscribe_all();
    if (!opts_.status_topic.empty()) {
      try {
        cli_->publish(opts_.status_topic, "online", 6, 1, true);
      } catch (const mqtt::exception& e) {
        log_line(opts_.client_id, std::string("birth message failed: ") + e.what());
      }
    }
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lk(mu_);
      hook = connected_hook_;
    }
    if (hook) hook();
  });
  cli_->set_connection_lost_handler([this](const std::string& cause) {
    log_line(opts_.client_id, "connection to " + opts_.broker.describe() + " lost" + (cause.empty() ? "" : ": " + cause) +
                                  "; reconnecting");
  });
  sender_ = std::thread([this] { sender_loop(); });
}

void MqttClient::close() {
  stopping_ = true;
  outbox_.close();
}

MqttClient::~MqttClient() {
  if (!outbox_.closed()) flush(std::chrono::milliseconds(2000));
  close();
  if (sender_.joinable()) sender_.join();
  try {
    if (cli_->is_connected()) {
      // A clean disconnect suppresses the will, so say "offline" ourselves.
      if (!opts_.status_topic.empty()) cli_->publish(opts_.status_topic, "offline", 7, 1, true)->wait_for(kAckTimeout);
      cli_->disconnect()->wait_for(std::chrono::seconds(2));
    }
  } catch (const mqtt::exception& e) {
    log_line(opts_.client_id, std::string("disconnect: ") + e.what());
  }
}

void MqttClient::on_connected(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  connected_hook_ = std::move(fn);
}

bool MqttClient::connected() const { return cli_->is_connected(); }

std::string MqttClient::take_tls_error() {
  std::lock_guard<std::mutex> lk(mu_);
  std::string e;
  e.swap(tls_error_);
  return e;
}

void MqttClient::connect() {
  const BrokerConnection& bc = opts_.broker;
  auto builder = mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .keep_alive_interval(opts_.keep_alive)
                     .connect_timeout(std::max(std::chrono::seconds(1),
                                               std::chrono::duration_cast<std::chrono::seconds>(opts_.connect_timeout)))
                     .automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(4));
  if (bc.urls.size() > 1) builder.servers(std::make_shared<mqtt::string_collection>(bc.urls));
  if (!bc.username.empty()) builder.user_name(bc.username).password(bc.password);
  if (bc.tls()) {
    auto ssl = mqtt::ssl_options_builder()
                   .enable_server_cert_auth(true)   // the chain is always checked
                   .verify(!bc.insecure)            // ... and, unless --insecure, the host name
                   .error_handler([this](const std::string& e) {
                     std::lock_guard<std::mutex> lk(mu_);
                     if (tls_error_.empty()) tls_error_ = e;   // the first error is the cause
                   });
    if (!bc.cafile.empty()) ssl.trust_store(bc.cafile);
    if (!bc.cert.empty()) ssl.key_store(bc.cert).private_key(bc.key);
    builder.ssl(ssl.finalize());
  }
  if (!opts_.status_topic.empty()) builder.will(mqtt::message(opts_.status_topic, "offline", 7, 1, true));
  const mqtt::connect_options co = builder.finalize();

  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    int rc = -1, reason = 0;
    std::string message = "no answer within " + std::to_string(opts_.connect_timeout.count()) + " ms";
    take_tls_error();
    try {
      auto tok = cli_->connect(co);
      if (tok->wait_for(opts_.connect_timeout) && cli_->is_connected()) return;
    } catch (const mqtt::exception& e) {
      rc = e.get_return_code();
      reason = e.get_reason_code();
      message = e.get_message().empty() ? e.get_error_str() : e.get_message();
    }
    // Paho reports a v5 CONNACK refusal as its return code; older paths give the reason separately.
    if (reason < 0x80 && rc >= 0x80) reason = rc;
    std::string tls_error = take_tls_error();
    // Paho gives no reason when its own TLS checks fail (host name) or the peer is no TLS server:
    // a handshake of our own, with the same settings, says why.
    if (tls_error.empty() && reason < 0x80 && bc.tls())
      for (const auto& url : bc.urls)
        if (tls_error.empty() && url.find("://") != std::string::npos && url.rfind("tcp://", 0) != 0 &&
            url.rfind("mqtt://", 0) != 0)
          tls_error = tls_handshake_error(url, bc);
    const bool final = connect_failure_is_final(rc, reason, tls_error);
    const auto waited = std::chrono::steady_clock::now() - t0;
    if (final || waited >= opts_.connect_timeout) {
      std::string what = "broker " + bc.describe() + " " + describe_connect_failure(bc, rc, reason, tls_error, message);
      if (!final)
        what += " for " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(waited).count()) + " s";
      throw Error(what);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void MqttClient::resubscribe_all() {
  std::set<std::string> subs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    subs = subscriptions_;
  }
  for (const auto& f : subs) {
    try {
      cli_->subscribe(f, opts_.qos);   // on Paho's thread: do not wait for the SUBACK here
    } catch (const mqtt::exception& e) {
      log_line(opts_.client_id, "resubscribe to '" + f + "' failed: " + e.what());
    }
  }
}

void MqttClient::subscribe(const std::string& filter) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    subscriptions_.insert(filter);
  }
  if (!cli_->is_connected()) return;   // the connected handler will make it
  try {
    if (!cli_->subscribe(filter, opts_.qos)->wait_for(kAckTimeout))
      throw Error("subscribe to '" + filter + "': no SUBACK from " + opts_.broker.describe());
  } catch (const mqtt::exception& e) {
    throw Error("broker " + opts_.broker.describe() + " refused the subscription to '" + filter + "' (" +
                (e.get_reason_code() >= 0x80 ? mqtt_reason_words(e.get_reason_code()) : std::string(e.what())) + ")");
  }
}

void MqttClient::unsubscribe(const std::string& filter) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    subscriptions_.erase(filter);
  }
  if (!cli_->is_connected()) return;
  try {
    cli_->unsubscribe(filter)->wait_for(kAckTimeout);
  } catch (const mqtt::exception& e) {
    log_line(opts_.client_id, "unsubscribe from '" + filter + "': " + e.what());
  }
}

bool MqttClient::publish(std::string topic, std::string payload, bool retained) {
  return publish(std::move(topic), std::move(payload), PublishProps{}, retained);
}

bool MqttClient::publish(std::string topic, std::string payload, PublishProps props, bool retained) {
  if (!outbox_.push({std::move(topic), std::move(payload), retained, std::move(props)})) return false;
  ++queued_;
  return true;
}

bool MqttClient::try_publish(std::string topic, std::string payload, bool retained) {
  return try_publish(std::move(topic), std::move(payload), PublishProps{}, retained);
}

bool MqttClient::try_publish(std::string topic, std::string payload, PublishProps props, bool retained) {
  if (!outbox_.try_push({std::move(topic), std::move(payload), retained, std::move(props)})) return false;
  ++queued_;
  return true;
}

bool MqttClient::try_publish_control(std::string topic, std::string payload) {
  if (!outbox_.try_push_urgent({std::move(topic), std::move(payload), false, {}}, opts_.control_reserve)) return false;
  ++queued_;
  return true;
}

bool MqttClient::flush(std::chrono::milliseconds timeout) {
  const uint64_t target = queued_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (sent_ < target) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void MqttClient::sender_loop() {
  struct Pending {
    mqtt::delivery_token_ptr token;
    size_t bytes;
    std::string topic;
  };
  std::deque<Pending> window;
  size_t window_bytes = 0;
  auto retire_front = [&](bool wait) {
    Pending p = window.front();
    if (!wait && !p.token->is_complete()) return false;
    window.pop_front();
    window_bytes -= p.bytes;
    try {
      if (!p.token->wait_for(kAckTimeout)) {
        ++publish_failures_;
        log_line(opts_.client_id, "publish not acknowledged within 10 s");
      }
    } catch (const mqtt::exception& e) {
      ++publish_failures_;
      // A QoS1 publish the broker denies (ACL) comes back as PUBACK 0x87 "not authorized".
      log_line(opts_.client_id, "publish to '" + p.topic + "' failed: " +
                                    (e.get_reason_code() >= 0x80 ? "the broker answered " + mqtt_reason_words(e.get_reason_code())
                                                                 : std::string(e.what())));
    }
    ++sent_;
    return true;
  };

  while (true) {
    while (!window.empty() && retire_front(false)) {
    }
    auto item = outbox_.pop_for(std::chrono::milliseconds(20));
    if (!item) {
      while (!window.empty()) retire_front(true);   // idle: settle everything, so flush() returns
      if (outbox_.closed()) return;
      continue;
    }
    const size_t bytes = item->payload.size();
    while (!window.empty() && (static_cast<int>(window.size()) >= opts_.max_inflight ||
                               window_bytes + bytes > opts_.max_inflight_bytes))
      retire_front(true);
    // While the broker is away, hold the message (the outbox fills and producers wait) rather
    // than let Paho fail it.
    while (!cli_->is_connected() && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      mqtt::properties props;
      if (!item->props.correlation_data.empty())
        props.add({mqtt::property::CORRELATION_DATA, item->props.correlation_data});
      if (!item->props.content_type.empty()) props.add({mqtt::property::CONTENT_TYPE, item->props.content_type});
      if (item->props.expiry_s) props.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, item->props.expiry_s});
      auto msg = std::make_shared<mqtt::message>(item->topic, std::move(item->payload), opts_.qos, item->retained, props);
      window.push_back({cli_->publish(msg), bytes, item->topic});
      window_bytes += bytes;
    } catch (const mqtt::exception& e) {
      ++publish_failures_;
      ++sent_;
      log_line(opts_.client_id, "publish to '" + item->topic + "' failed: " + e.what());
    }
  }
}

}  // namespace dnn
