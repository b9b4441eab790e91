// Timestamped log lines; one fprintf per line so threads do not interleave.
#include "log.h"

#include <cstdio>
#include <ctime>

namespace vane {

void log_line(const char* level, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &t);
  fprintf(stderr, "%s.%03ldZ vaned %s: %s\n", when, ts.tv_nsec / 1000000, level, msg);
  fflush(stderr);
}

}  // namespace vane
