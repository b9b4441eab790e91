// The embedded demo: a config and zone compiled into vaned, so that a fresh
// machine can run `vaned --demo` with nothing on disk.
#pragma once

#include "config.h"

namespace vane::server {

Result<Config> demo_config();

}  // namespace vane::server
