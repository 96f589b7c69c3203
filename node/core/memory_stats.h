// Resident memory of this process, from /proc/self/status (Linux). Used by bench, inspect and the
// node's heartbeat to report what a device really needs.
#pragma once
#include <cstdint>

namespace dnn {

int64_t peak_rss_bytes();     // VmHWM: the high-water mark since start
int64_t current_rss_bytes();  // VmRSS

}  // namespace dnn
