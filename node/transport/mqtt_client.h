// The one MQTT client of a node or a swarm client: Paho C++ async, MQTT v5, with the pitfalls of
// Paho 1.2.0 handled in one place (see ../shared/notes/mqtt-paho-ha-facts.md):
//  - created with create_options(MQTTVERSION_5) (else connect fails), clean start;
//  - automatic reconnect, and every subscription re-made in the connected handler (Paho does not);
//  - will "offline" and retained birth "online" on the status topic;
//  - publishes go through one sender thread with a bounded window of outstanding QoS1 publishes
//    (count and bytes), waiting on the oldest token: firing past the broker's Receive-Maximum stalls
//    Paho for a second per message, and large payloads go fastest with few outstanding;
//  - the message handler runs on Paho's thread and must not block: give it a try_push() into a
//    bounded queue.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "transport/bounded_queue.h"
#include "transport/connection.h"

namespace mqtt {
class async_client;
}

namespace dnn {

struct MqttOptions {
  BrokerConnection broker;           // URL(s), login, TLS (transport/connection.h)
  std::string client_id;
  std::string status_topic;          // will "offline", birth "online" (retained); empty = none
  int qos = 1;
  int max_inflight = 16;             // outstanding publishes (below Mosquitto's Receive-Maximum of 20)
  size_t max_inflight_bytes = 1u << 20;   // ... and their bytes: 1 MB payloads go one at a time
  size_t outbox_capacity = 64;       // publishes queued for the sender thread
  size_t control_reserve = 256;      // room kept for control messages (errors, progress) beyond it
  std::chrono::seconds keep_alive{10};
  // First connect: an unreachable broker is retried until then; a refused login or TLS failure
  // fails at once.
  std::chrono::milliseconds connect_timeout{10000};
};

struct Inbound {
  std::string topic;
  std::shared_ptr<const std::string> payload;
  // MQTT v5 request/response: where the sender wants its answer, and what to send back with it.
  std::string response_topic;
  std::string correlation_data;
  std::string content_type;
};

// MQTT v5 properties of a publish (empty = not sent).
struct PublishProps {
  std::string correlation_data;
  std::string content_type;   // e.g. "application/json"
  uint32_t expiry_s = 0;      // Message Expiry Interval: the broker drops it if undelivered by then
};

class MqttClient {
 public:
  // Runs on Paho's callback thread: must return quickly and never block.
  using MessageHandler = std::function<void(Inbound&&)>;

  MqttClient(MqttOptions opts, MessageHandler on_message);
  ~MqttClient();   // publishes "offline", disconnects, joins the sender thread
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  // Connects (retrying an unreachable broker until connect_timeout); throws Error naming the
  // broker and the cause in words when it cannot ("broker ssl://h:8883 refused the login for user
  // 'cam' (bad user name or password)").
  void connect();
  // Called (on Paho's thread) after every successful connect, after resubscribing and the birth
  // message: e.g. to announce the node again. Must not block; use try_publish().
  void on_connected(std::function<void()> fn);

  // Remembered and re-made after every reconnect; waits for the SUBACK when connected. A filter may
  // be a shared subscription "$share/<group>/<topic>". Throws Error when the broker refuses.
  void subscribe(const std::string& filter);
  void unsubscribe(const std::string& filter);

  // Queues a publish for the sender thread, waiting while the outbox is full (backpressure). Not
  // for the message handler. False once the client is shutting down.
  bool publish(std::string topic, std::string payload, bool retained = false);
  bool publish(std::string topic, std::string payload, PublishProps props, bool retained = false);
  // Never blocks: false when the outbox is full (the caller logs and drops).
  bool try_publish(std::string topic, std::string payload, bool retained = false);
  bool try_publish(std::string topic, std::string payload, PublishProps props, bool retained = false);
  // A small control message (error report, progress): goes ahead of what waits in the outbox, into
  // room of its own, so a full outbox of tensors cannot swallow it. Never blocks.
  bool try_publish_control(std::string topic, std::string payload);

  // Waits until everything queued so far has been handed to the broker (or `timeout`).
  bool flush(std::chrono::milliseconds timeout);
  // Refuses new publishes from now on (they return false, so no thread stays blocked in publish());
  // what is queued is still sent while connected. Called by the destructor; call it earlier to stop
  // producers when shutting down.
  void close();

  bool connected() const;
  const MqttOptions& options() const { return opts_; }
  uint64_t publish_failures() const { return publish_failures_; }

 private:
  struct Outgoing {
    std::string topic;
    std::string payload;
    bool retained = false;
    PublishProps props;
  };
  void sender_loop();
  void resubscribe_all();
  std::string take_tls_error();

  MqttOptions opts_;
  MessageHandler on_message_;
  std::unique_ptr<mqtt::async_client> cli_;
  std::mutex mu_;   // guards subscriptions_ and connected_hook_
  std::set<std::string> subscriptions_;
  std::string tls_error_;   // what OpenSSL said during the last connect attempt (guarded by mu_)
  std::function<void()> connected_hook_;
  BoundedQueue<Outgoing> outbox_;
  std::atomic<uint64_t> queued_{0}, sent_{0};   // for flush()
  std::atomic<uint64_t> publish_failures_{0};
  std::atomic<bool> stopping_{false};
  std::thread sender_;
};

// Logs one line to stderr with a timestamp; the node's only logging.
void log_line(const std::string& who, const std::string& what);

}  // namespace dnn
