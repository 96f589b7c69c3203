#include "swarm/acl.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "core/error.h"
#include "transport/topics.h"

namespace dnn {

std::string plan_node_id(const StageSpec& stage, int shard, int replica) {
  return stage.name + (stage.sharded() ? "-k" + std::to_string(shard) : "") + "-r" + std::to_string(replica);
}

namespace {

int shard_count(const StageSpec& s) { return s.sharded() ? s.shards : 1; }

// The input topics of stage `s`: its one topic, or one per shard.
std::vector<std::string> stage_inputs(const Topics& t, const Plan& plan, size_t s) {
  const StageSpec& stage = plan.stages[s];
  if (!stage.sharded()) return {t.stage_in(plan.model, static_cast<int>(s))};
  std::vector<std::string> topics;
  for (int k = 0; k < stage.shards; ++k) topics.push_back(t.shard_in(plan.model, static_cast<int>(s), k));
  return topics;
}

// What a node (or client) forwarding a request to stage `s` publishes to: that stage's input; when
// it is sharded, the forwarder joins the partials and forwards on, so the next stage's too, and so on;
// past the last stage, `results`.
std::vector<std::string> forward_targets(const Topics& t, const Plan& plan, size_t s, const std::vector<std::string>& results) {
  std::vector<std::string> topics;
  for (; s < plan.stages.size(); ++s) {
    for (const auto& topic : stage_inputs(t, plan, s)) topics.push_back(topic);
    if (!plan.stages[s].sharded()) return topics;
  }
  topics.insert(topics.end(), results.begin(), results.end());
  return topics;
}

void add(std::vector<std::string>& to, const std::vector<std::string>& topics) {
  for (const auto& t : topics)
    if (std::find(to.begin(), to.end(), t) == to.end()) to.push_back(t);
}

}  // namespace

std::vector<AclLogin> plan_logins(const Plan& plan, const std::string& prefix, const std::vector<std::string>& clients) {
  const Topics t(prefix);
  check_topic_name(plan.model, "model name");
  const std::string& m = plan.model;
  const size_t stages = plan.stages.size();
  const std::vector<std::string> results = {t.client_result("+"), t.results(m, "+")};

  std::vector<AclLogin> logins;
  std::set<std::string> node_ids;
  for (size_t s = 0; s < stages; ++s) {
    const StageSpec& stage = plan.stages[s];
    for (int k = 0; k < shard_count(stage); ++k)
      for (int r = 0; r < stage.replicas; ++r) {
        AclLogin l;
        l.node = true;
        l.name = plan_node_id(stage, k, r);
        check_topic_name(l.name, "node id");
        node_ids.insert(l.name);
        // Reads: its input, its direct topics, peers' load, frames for the first stage.
        l.read.push_back(stage.sharded() ? t.shard_in(m, static_cast<int>(s), k) : t.stage_in(m, static_cast<int>(s)));
        add(l.read, {t.node_in(l.name), t.node_work(l.name)});
        // Delivery (docs/protocol.md, "Delivery"): every node follows every node's heartbeat and
        // status, to steer requests around silent replicas.
        add(l.read, {t.heartbeat("+"), t.node_status("+")});
        if (s == 0) add(l.read, {t.frames(m, "+")});
        // Writes: where its output goes. A non-shard node forwards to the next stage; a shard sends
        // its partial to the joiner: a node of the last non-sharded stage before it, or a client.
        if (!stage.sharded()) {
          add(l.write, forward_targets(t, plan, s + 1, results));
        } else {
          size_t b = s;
          while (b > 0 && plan.stages[b - 1].sharded()) --b;
          if (b == 0) {
            for (const auto& c : clients) add(l.write, {t.node_in(c)});
          } else {
            const StageSpec& joiner = plan.stages[b - 1];
            for (int rr = 0; rr < joiner.replicas; ++rr) add(l.write, {t.node_in(plan_node_id(joiner, 0, rr))});
          }
        }
        // Any node's work topic: a handoff to a peer, or a request steered to a live replica of the
        // next stage; and the clients' direct topics: Progress acknowledgements.
        add(l.write, {t.node_work("+")});
        for (const auto& c : clients) add(l.write, {t.node_in(c)});
        add(l.write, {t.node_status(l.name), t.node_state(l.name), t.hello(l.name), t.heartbeat(l.name), t.topology(m),
                      t.error()});
        // Home Assistant discovery (docs/homeassistant.md): every node announces itself, and the
        // nodes that answer frames announce the sensor streams, under the default discovery prefix.
        add(l.write, {std::string(kHaDiscoveryPrefix) + "/#"});
        add(l.read, {std::string(kHaDiscoveryPrefix) + "/status"});
        logins.push_back(std::move(l));
      }
  }
  for (const auto& c : clients) {
    check_topic_name(c, "client name");
    if (node_ids.count(c)) throw Error("client name '" + c + "' is also a node id of the plan");
    AclLogin l;
    l.name = c;
    l.write = forward_targets(t, plan, 0, {t.client_result(c)});
    add(l.write, {t.node_work("+")});   // re-sends go straight to a live replica
    add(l.write, {t.frames(m, "+"), t.error()});
    l.read = {t.client_result(c), t.node_in(c), t.topology(m), t.results(m, "+"), t.node_status("+"), t.node_state("+"),
              t.heartbeat("+")};
    logins.push_back(std::move(l));
  }
  return logins;
}

std::string acl_file_text(const std::vector<AclLogin>& logins, const std::string& what) {
  std::ostringstream out;
  out << "# Mosquitto ACL for " << what << ", written by `dnnswarm acl` (docs/security.md).\n"
      << "# One block per login (user name = MQTT client id); anything not listed is denied.\n"
      << "# Reload without restarting the broker: kill -HUP <mosquitto's pid>.\n";
  for (const auto& l : logins) {
    out << "\n# " << (l.node ? "node " : "client ") << l.name << "\nuser " << l.name << "\n";
    for (const auto& topic : l.read) out << "topic read " << topic << "\n";
    for (const auto& topic : l.write) out << "topic write " << topic << "\n";
  }
  return out.str();
}

}  // namespace dnn
