// Timestamped log lines; one write per call (a line, or a batch of lines) so
// threads do not interleave.
#include "log.h"

#include <cstdio>
#include <ctime>

namespace vane {

namespace {

// "2026-11-30T22:49:05.393Z vaned LEVEL: "
std::string prefix(const char* level) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &t);
  char out[96];
  snprintf(out, sizeof out, "%s.%03ldZ vaned %s: ", when, ts.tv_nsec / 1000000, level);
  return out;
}

}  // namespace

void log_line(const char* level, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s%s\n", prefix(level).c_str(), msg);
  fflush(stderr);
}

void log_lines(const char* level, const std::vector<std::string>& msgs) {
  if (msgs.empty()) return;
  std::string head = prefix(level), all;
  size_t n = 0;
  for (const auto& m : msgs) n += head.size() + m.size() + 1;
  all.reserve(n);
  for (const auto& m : msgs) all.append(head).append(m).push_back('\n');
  fwrite(all.data(), 1, all.size(), stderr);
  fflush(stderr);
}

}  // namespace vane
