// Loopback TCP probes, for starting a local Mosquitto (the demo swarm, the tests).
#pragma once

namespace dnn {

// A loopback TCP port nobody listens on right now (the kernel's pick). Throws Error if none.
int free_loopback_port();
// True when something accepts TCP connections on 127.0.0.1:port.
bool loopback_port_accepts(int port);

}  // namespace dnn
