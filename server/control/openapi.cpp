#include "openapi.h"

#include <string>
#include <vector>

namespace vane::server {

namespace {

using Json = nlohmann::json;

Json str(const char* description) {
  return {{"type", "string"}, {"description", description}};
}

Json component(const std::string& name) {
  return {{"$ref", "#/components/" + name}};
}

// A verb's body: its fields, which are required, and an example the tests
// send (against the demo zone) when they walk the document.
struct Body {
  Json properties;
  std::vector<const char*> required;
  Json example;
};

Json schema(const Body& b) {
  Json s{{"type", "object"}, {"additionalProperties", false}, {"properties", b.properties}};
  if (!b.required.empty()) s["required"] = b.required;
  return s;
}

const Json kRecord = str("the steered record: its owner name, with /TYPE when it has several steered types");
const Json kEndpoint = str("the endpoint's name in the record");
const Json kRegion = str("instead of record and endpoint: every endpoint of this region, in every record, as one change");
const Json kRegionZone = str("with region: only the records of this zone");
const Json kReason = {{"type", "string"}, {"maxLength", 500}, {"description", "why; kept in the journal"}};

struct Op {
  const char* verb;
  const char* summary;
  const char* scope;
  bool get;
  Body body;
  std::vector<Json> params;  // GET query parameters
  std::vector<int> errors;   // beyond 400, 401, 403, 413, 429
};

std::vector<Op> ops() {
  Json limit{{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"description", "newest entries to return (default 20)"}};
  Json qtype{{"type", "string"}, {"enum", {"A", "AAAA", "CNAME"}}};
  auto param = [](const char* name, Json schema, const char* description, bool required = false) {
    return Json{{"name", name}, {"in", "query"}, {"required", required}, {"schema", schema}, {"description", description}};
  };
  return {
      {"status", "Zones, records, endpoints: state, weights, verdicts per vantage", "read", true,
       {{{"filter", str("a zone or a record: only that")}}, {}, Json::object()},
       {param("filter", {{"type", "string"}}, "a zone or a record: only that")}, {404}},
      {"history", "The journal: admin changes, health flips, expiries, newest last", "read", true,
       {{{"limit", limit}}, {}, {{"limit", 5}}},
       {param("limit", limit, "newest entries to return (default 20)")}, {}},
      {"explain", "Which endpoints a client gets for a name, and why", "read", true,
       {{{"qname", str("the name asked")}, {"qtype", qtype}, {"client", str("client address or subnet")}},
        {"qname"}, {{"qname", "app.example.com"}, {"qtype", "A"}, {"client", "192.0.2.1"}}},
       {param("qname", {{"type", "string"}}, "the name asked", true), param("type", qtype, "the type asked"),
        param("client", {{"type", "string"}}, "client address or subnet, e.g. 192.0.2.1 or 192.0.2.0/24")},
       {}},
      {"weight", "Set an endpoint's weight (0-255, or \"config\"), at once or ramped", "write or write:ZONE", false,
       {{{"record", kRecord}, {"endpoint", kEndpoint},
         {"weight", {{"oneOf", {{{"type", "integer"}, {"minimum", 0}, {"maximum", 255}}, {{"type", "string"}, {"enum", {"config"}}}}}}},
         {"over", str("ramp over a duration like 10m instead of at once")}, {"reason", kReason}},
        {"record", "endpoint", "weight"}, {{"record", "www.example.com"}, {"endpoint", "use2"}, {"weight", 0}}},
       {}, {404, 503}},
      {"drain", "Take an endpoint, or a region's every endpoint, out of answers until undrained, or for a while",
       "write or write:ZONE (a region: write, or write:ZONE with its zone)", false,
       {{{"record", kRecord}, {"endpoint", kEndpoint}, {"region", kRegion}, {"zone", kRegionZone},
         {"for", str("expire after a duration like 15m")}, {"reason", kReason}},
        {},
        {{"record", "app.example.com"}, {"endpoint", "standby"}, {"reason", "walking the API"}}},
       {}, {404, 503}},
      {"undrain", "Put a drained endpoint back, or a region's drained endpoints",
       "write or write:ZONE (a region: write, or write:ZONE with its zone)", false,
       {{{"record", kRecord}, {"endpoint", kEndpoint}, {"region", kRegion}, {"zone", kRegionZone}, {"reason", kReason}},
        {},
        {{"record", "app.example.com"}, {"endpoint", "standby"}}},
       {}, {404, 503}},
      {"force", "Force an endpoint up or down, or back to its health (auto)", "write or write:ZONE", false,
       {{{"record", kRecord}, {"endpoint", kEndpoint}, {"state", {{"type", "string"}, {"enum", {"up", "down", "auto"}}}},
         {"for", str("expire after a duration like 15m")}, {"reason", kReason}},
        {"record", "endpoint", "state"}, {{"record", "app.example.com"}, {"endpoint", "standby"}, {"state", "auto"}}},
       {}, {404, 503}},
      {"failback", "End a failover record's hold: traffic returns to its preferred tier", "write or write:ZONE", false,
       {{{"record", kRecord}, {"reason", kReason}}, {"record"}, {{"record", "app.example.com"}}}, {}, {404, 503}},
      {"drill", "Schedule, list or cancel a drill (an endpoint forced down for a while, TTL lowered ahead)",
       "write or write:ZONE; list: read", false,
       {{{"action", {{"type", "string"}, {"enum", {"schedule", "list", "cancel"}}}}, {"record", kRecord},
         {"endpoint", kEndpoint}, {"at", str("+DURATION or a UTC time like 2026-11-26T10:00:00Z")},
         {"for", str("how long, like 15m")}, {"lower_ttl", {{"type", "integer"}, {"minimum", 1}}},
         {"id", {{"type", "integer"}, {"minimum", 0}, {"description", "the drill to cancel"}}}, {"reason", kReason}},
        {}, {{"action", "list"}}},
       {}, {404, 503}},
      {"zone", "A secondary zone: refresh (ask the primary now) or retransfer (AXFR)", "write or write:ZONE", false,
       {{{"action", {{"type", "string"}, {"enum", {"refresh", "retransfer"}}}}, {"zone", str("the secondary zone")}},
        {"action", "zone"}, {{"action", "refresh"}, {"zone", "example.com"}}},
       {}, {404}},
      {"reload", "Re-read the config and zones (or one zone); a bad one is refused and the old keeps serving", "admin",
       false, {{{"zone", str("only this zone's file")}}, {}, Json::object()}, {}, {}},
      {"dnssec", "A signed zone's keys: ds, keys (read); keygen, activate, retire (admin)", "admin; ds and keys: read",
       false,
       {{{"action", {{"type", "string"}, {"enum", {"ds", "keys", "keygen", "activate", "retire"}}}},
         {"zone", str("the signed zone")}, {"tag", {{"type", "integer"}, {"minimum", 0}, {"maximum", 65535}}},
         {"role", {{"type", "string"}, {"enum", {"ksk", "zsk", "csk"}}}}, {"algorithm", str("e.g. ecdsap256sha256")}},
        {"action", "zone"}, {{"action", "keys"}, {"zone", "example.com"}}},
       {}, {404}},
  };
}

Json build() {
  Json errors{
      {"400", {{"description", "a bad request: the error names the field, parameter or JSON position at fault"}}},
      {"401", {{"description", "no bearer token, or not a valid one"}}},
      {"403", {{"description", "outside the token's scope"}}},
      {"404", {{"description", "no such zone, record, endpoint, drill or path"}}},
      {"405", {{"description", "the path does not take this method (see Allow)"}}},
      {"409", {{"description", "the Idempotency-Key was used for another request, or is still running"}}},
      {"413", {{"description", "the body is over api.max_body"}}},
      {"429",
       {{"description", "over the token's rate"},
        {"headers", {{"Retry-After", {{"description", "seconds to wait"}, {"schema", {{"type", "integer"}}}}}}}}},
      {"503", {{"description", "the state store or the cluster did not take the change: nothing was applied"}}},
      {"504", {{"description", "vaned did not answer in time"}}},
  };
  for (auto& [code, r] : errors.items()) r["content"] = {{"application/json", {{"schema", component("schemas/Error")}}}};
  Json doc{
      {"openapi", "3.0.3"},
      {"info",
       {{"title", "vane HTTP API"},
        {"version", "1"},
        {"description",
         "Every vanectl verb as JSON. Answers are the admin socket's (vanectl --json): {\"ok\": true, ...} or "
         "{\"ok\": false, \"error\": ...}. Bearer tokens from api.tokens; the token's name is the actor in the "
         "journal. POSTs take an Idempotency-Key: a retry with the same key, path and body gets the first answer."}}},
      {"servers", {{{"url", "/"}}}},
      {"security", {{{"bearer", Json::array()}}}},
      {"components",
       {{"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}},
        {"schemas",
         {{"Error",
           {{"type", "object"},
            {"required", {"ok", "error"}},
            {"properties",
             {{"ok", {{"type", "boolean"}, {"enum", {false}}}},
              {"error", {{"type", "string"}}},
              {"code", {{"type", "string"}, {"enum", {"not_found", "unavailable"}}}}}}}},
          {"Result",
           {{"type", "object"},
            {"required", {"ok"}},
            {"properties", {{"ok", {{"type", "boolean"}, {"enum", {true}}}}}},
            {"additionalProperties", true}}}}},
        {"responses", errors},
        {"parameters",
         {{"IdempotencyKey",
           {{"name", "Idempotency-Key"},
            {"in", "header"},
            {"required", false},
            {"schema", {{"type", "string"}, {"maxLength", 255}}},
            {"description", "a retry with the same key, path and body gets the first answer (kept 24 hours)"}}}}}}},
      {"paths", Json::object()},
  };
  Json any_object{{"schema", {{"type", "object"}}}};
  Json document{{"description", "the OpenAPI 3 document"}, {"content", {{"application/json", any_object}}}};
  doc["paths"]["/v1/openapi.json"]["get"] = {{"summary", "This document"},
                                             {"operationId", "openapi"},
                                             {"security", Json::array()},
                                             {"responses", {{"200", document}}}};
  for (const auto& op : ops()) {
    Json responses{{"200",
                    {{"description", "done (the same JSON as vanectl --json)"},
                     {"content", {{"application/json", {{"schema", component("schemas/Result")}}}}}}}};
    std::vector<int> codes{400, 401, 403, 413, 429, 504};
    codes.insert(codes.end(), op.errors.begin(), op.errors.end());
    for (int c : codes) responses[std::to_string(c)] = component("responses/" + std::to_string(c));
    std::string desc = std::string(op.summary) + ". Scope: " + op.scope + ".";
    Json post{{"summary", op.summary},
              {"description", desc},
              {"operationId", std::string(op.verb)},
              {"parameters", {component("parameters/IdempotencyKey")}},
              {"requestBody",
               {{"required", false},
                {"content", {{"application/json", {{"schema", schema(op.body)}, {"example", op.body.example}}}}}}},
              {"responses", responses}};
    post["responses"]["409"] = component("responses/409");
    Json path{{"post", post}};
    if (op.get) {
      Json get_responses = responses;
      get_responses.erase("413");
      path["get"] = {{"summary", op.summary},
                     {"description", desc},
                     {"operationId", std::string(op.verb) + "Get"},
                     {"parameters", op.params},
                     {"responses", get_responses}};
    }
    doc["paths"]["/v1/" + std::string(op.verb)] = path;
  }
  return doc;
}

}  // namespace

const nlohmann::json& openapi_document() {
  static const Json doc = build();
  return doc;
}

}  // namespace vane::server
