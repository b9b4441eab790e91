// One line per event that matters, to stderr (journald under systemd).
// Never called per query.
#pragma once

#include <cstdarg>
#include <string>
#include <vector>

namespace vane {

void log_line(const char* level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Many lines at once (a zone set's "loaded" lines): one timestamp, one write.
void log_lines(const char* level, const std::vector<std::string>& msgs);

#define VANE_INFO(...) ::vane::log_line("info", __VA_ARGS__)
#define VANE_WARN(...) ::vane::log_line("warning", __VA_ARGS__)
#define VANE_ERROR(...) ::vane::log_line("error", __VA_ARGS__)

}  // namespace vane
