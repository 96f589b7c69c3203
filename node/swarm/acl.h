// Least-privilege broker logins for a plan: which topics each node and each client may read and
// write, as a Mosquitto ACL file (`dnnswarm acl` writes it with the logins' passwords).
//
// Every login's user name is its MQTT client id: a node's id (plan_node_id(), the ids `dnnswarm
// swarm` gives its nodes) or a client's name (`dnnswarm infer --client-id NAME`). A node of stage s
// (shard k) may:
//   read   its input: <p>/<m>/s<s>/in (or .../shard<k>/in; replicas subscribe to the $share form,
//          Mosquitto checks the message's topic), <p>/node/<id>/in and /work (its direct topics),
//          every node's heartbeat and status (load figures, and steering around silent replicas),
//          <p>/<m>/frames/+ when s = 0 (camera frames)
//   write  the next stage's input (or each of its shards), or, at the end of the pipeline, client
//          result topics <p>/client/+/result and <p>/<m>/results/+; the join topics of the stage
//          before it when sharded (<p>/node/<joiner>/in); any node's /work topic (handoffs, and
//          requests steered to a live replica); the clients' <p>/node/<name>/in (acknowledgements); its own status,
//          hello, heartbeat and state; the model's retained topology; <p>/ctl/error; Home
//          Assistant discovery under homeassistant/# (and read homeassistant/status)
// A client may write the first stage's input (or shards), frames, any node's /work (re-sends) and
// <p>/ctl/error, and read only
// its own <p>/client/<name>/result and <p>/node/<name>/in, the topology, <p>/<m>/results/+ and nodes'
// status, state and heartbeats. Everything else is denied: Mosquitto refuses a QoS1 publish with PUBACK 0x87 and
// delivers nothing a login may not read (a subscription itself is granted either way).
#pragma once
#include <string>
#include <vector>

#include "swarm/plan.h"

namespace dnn {

// The discovery prefix the ACL grants nodes (Home Assistant's default; a node started with another
// --ha-prefix needs its ACL edited to match).
constexpr const char* kHaDiscoveryPrefix = "homeassistant";

// "<stage>-r<replica>" or "<stage>-k<shard>-r<replica>": the node ids of a plan's roles.
std::string plan_node_id(const StageSpec& stage, int shard, int replica);

struct AclLogin {
  std::string name;                    // user name = MQTT client id
  bool node = false;                   // a node of the plan (else a client)
  std::vector<std::string> read, write;   // topics / filters
};

// The logins of every role of `plan` (in plan order), then one per client name. Throws Error when
// a client name collides with a node id or is not a valid topic level.
std::vector<AclLogin> plan_logins(const Plan& plan, const std::string& prefix, const std::vector<std::string>& clients);

// The ACL file: a `user` block per login with `topic read|write` lines, commented.
std::string acl_file_text(const std::vector<AclLogin>& logins, const std::string& what);

}  // namespace dnn
