// `vaned agent`: a remote vantage. Runs the same probes as the main
// instance (its records: and checks:) and POSTs this vantage's verdicts, all
// of them, every report_interval to the main instance's /v1/observations.
#pragma once

#include "config.h"

namespace vane::healthcheck {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_agent(const AgentConfig& agent);

}  // namespace vane::healthcheck
