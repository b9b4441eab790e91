// GET /v1/openapi.json: the HTTP API described as OpenAPI 3.0 — every path,
// its body, its answers and errors. Built once from the same verb list the
// router serves; the tests validate it with a real OpenAPI validator and
// call every path it names.
#pragma once

#include <nlohmann/json.hpp>

namespace vane::server {

const nlohmann::json& openapi_document();

}  // namespace vane::server
