#include "core/memory_stats.h"

#include <fstream>
#include <string>

namespace dnn {

static int64_t status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::char_traits<char>::length(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0) return std::stoll(line.substr(n + 1));
  return 0;
}

int64_t peak_rss_bytes() { return status_kb("VmHWM") * 1024; }
int64_t current_rss_bytes() { return status_kb("VmRSS") * 1024; }

}  // namespace dnn
