// vanectl: the admin CLI. Each verb is one request on the admin socket;
// tables for people, --json for scripts, non-zero exit on any error.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "client.h"
#include "config.h"

using nlohmann::json;

namespace {

// The socket of the config vaned would use when started here: ./vane.yaml,
// else the embedded demo's.
std::string default_socket() {
  if (std::filesystem::exists("vane.yaml")) {
    auto cfg = vane::load_config("vane.yaml");
    if (cfg) return cfg->admin_socket;
  }
  return std::string(vane::kDemoStateDir) + "/admin.sock";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    printf("%s\n", line.c_str());
  }
}

std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

void print_cluster(const json& c);

void print_drills(const json& drills) {
  std::vector<std::vector<std::string>> rows{{"DRILL", "ENDPOINT", "START", "END", "LOWER TTL", "STATE", "REASON"}};
  for (const auto& d : drills) {
    std::string state = str(d["phase"]);
    if (d.contains("starts_in_s")) state += ", starts in " + str(d["starts_in_s"]) + "s";
    if (d.contains("ends_in_s")) state += ", ends in " + str(d["ends_in_s"]) + "s";
    rows.push_back({str(d["id"]), str(d["endpoint"]), str(d["start"]), str(d["end"]),
                    d["lower_ttl"].get<int>() ? str(d["lower_ttl"]) : "-", state, str(d["reason"])});
  }
  if (drills.empty())
    printf("no drills scheduled\n");
  else
    print_table(rows);
}

void print_status(const json& r) {
  std::string listen;
  for (const auto& l : r.value("listen", json::array())) listen += (listen.empty() ? "" : " ") + str(l);
  printf("vaned %s, pid %s, up %ss, %s workers, generation %s, listening on %s\n", str(r["version"]).c_str(),
         str(r["pid"]).c_str(), str(r["uptime_s"]).c_str(), str(r["workers"]).c_str(), str(r["generation"]).c_str(),
         listen.c_str());
  printf("config %s\n\n", str(r["config"]).c_str());
  std::vector<std::vector<std::string>> rows{{"ZONE", "SERIAL", "RECORDS", "ROLE", "FILE"}};
  std::vector<std::string> notes;
  for (const auto& z : r.value("zones", json::array())) {
    std::string role = "primary";
    if (z.contains("secondary")) {
      const json& s = z["secondary"];
      role = s["expired"].get<bool>() ? "secondary, EXPIRED (SERVFAIL)"
             : s.contains("expires_in_s") ? "secondary, expires in " + str(s["expires_in_s"]) + "s"
                                          : "secondary";
      if (s.contains("last_refresh")) notes.push_back(str(z["name"]) + ": last refresh " + str(s["last_refresh"]) +
                                                      (s.contains("last_transfer") ? " (" + str(s["last_transfer"]) + ")" : ""));
      if (s.contains("last_error")) notes.push_back(str(z["name"]) + ": LAST ERROR at " + str(s["last_error_at"]) + ": " +
                                                    str(s["last_error"]));
    } else if (z.contains("transfer")) {
      role = "primary, transferred";
      for (const auto& n : z["transfer"]["notify"])
        if (!n["answered"].get<bool>())
          notes.push_back(str(z["name"]) + ": NOTIFY of serial " + str(n["serial"]) + " to " + str(n["to"]) +
                          " not answered after " + str(n["attempts"]) + " attempts");
    }
    rows.push_back({str(z["name"]), str(z["serial"]), str(z["records"]), role, str(z["file"])});
  }
  print_table(rows);
  for (const auto& n : notes) printf("  %s\n", n.c_str());
  for (const auto& p : r.value("primaries_not_answering", json::array()))
    printf(
        "  PRIMARY %s NOT ANSWERING since %s: tried after the zones' other primaries until %s, or until it answers\n",
        str(p["primary"]).c_str(), str(p["not_answering_since"]).c_str(), str(p["tried_last_until"]).c_str());
  if (r.contains("dnstap")) {
    const json& d = r["dnstap"];
    printf("\ndnstap to %s (identity %s, one query in %s): %s; %s messages queued, %s dropped\n",
           str(d["sink"]).c_str(), str(d["identity"]).c_str(), str(d["sample"]).c_str(), str(d["state"]).c_str(),
           str(d["queued"]).c_str(), str(d["dropped"]).c_str());
  }
  if (r.contains("geo")) {
    const json& g = r["geo"];
    printf("\ngeo database %s: %s, built %s (%s days old), %s nodes; decision tables: %s address ranges (geo), "
           "%s (proximity)\n",
           str(g["database"]).c_str(), str(g["type"]).c_str(), str(g["built"]).c_str(),
           std::to_string(g["age_s"].get<int64_t>() / 86400).c_str(), str(g["nodes"]).c_str(),
           str(g["ranges"]["geo"]).c_str(), str(g["ranges"]["proximity"]).c_str());
    if (g.contains("last_error"))
      printf("  A NEW FILE COULD NOT BE USED (%s errors), still serving the one above: %s\n", str(g["errors"]).c_str(),
             str(g["last_error"]).c_str());
  }
  bool local_verdicts = false;
  for (const auto& rec : r.value("records", json::array())) {
    printf("\n%s %s  policy %s, ttl %s", str(rec["name"]).c_str(), str(rec["type"]).c_str(),
           str(rec["policy"]).c_str(), str(rec["ttl"]).c_str());
    if (rec.contains("ttl_now") && rec["ttl_now"] != rec["ttl"]) printf(", TTL LOWERED to %s", str(rec["ttl_now"]).c_str());
    if (rec.contains("failback")) {
      printf(", failback %s", str(rec["failback"]).c_str());
      if (rec["tier"].is_null())
        printf(", no tier up (failing open)");
      else if (rec["failed_over"].get<bool>())
        printf(", FAILED OVER to tier %s (preferred %s)", str(rec["tier"]).c_str(), str(rec["preferred_tier"]).c_str());
      if (rec["held"].get<bool>()) {
        printf("\n  HELD on tier %s since %s", str(rec["tier"]).c_str(), str(rec.value("held_since", json("?"))).c_str());
        const json& h = rec.value("preferred_healthy_s", json());
        printf(h.is_null() ? "; preferred tier not healthy" : "; preferred tier healthy for %ss", str(h).c_str());
        printf(" — vanectl failback %s releases it", str(rec["name"]).c_str());
      }
    }
    printf("\n");
    std::vector<std::vector<std::string>> eps{
        {"  ENDPOINT", "ADDRESS", "STATE", "HEALTH", "OVERRIDE", "WEIGHT", "PRIORITY", "REGION"}};
    for (const auto& e : rec["endpoints"]) {
      std::string ov = str(e["override"]);
      if (e.contains("override_until")) ov += " until " + str(e["override_until"]);
      if (e.contains("override_reason")) ov += " (" + str(e["override_reason"]) + ")";
      if (e.contains("damping") && e["damping"]["recent_flips"].get<int>() > 0 && str(e["override"]) != "damped")
        ov += " [" + str(e["damping"]["recent_flips"]) + " flips of " + str(e["damping"]["flips"]) + " in " +
              str(e["damping"]["window"]) + "]";
      std::string w =
          str(e["weight"]) + (e["admin_weight"].is_null() ? "" : " (admin; config " + str(e["config_weight"]) + ")");
      if (e.contains("ramp"))
        w += " ramping to " + str(e["ramp"]["to"]) + " until " + str(e["ramp"]["until"]);
      std::string health = str(e["health"]) + (e.value("health_local", false) ? "*" : "");
      local_verdicts |= e.value("health_local", false);
      eps.push_back({"  " + str(e["name"]), str(e["address"]), e["up"].get<bool>() ? "up" : "DOWN", health,
                     ov, w, str(e["priority"]), e.contains("region") ? str(e["region"]) : "-"});
    }
    print_table(eps);
  }
  if (local_verdicts)
    printf("\n* this node's own health verdict, not yet the cluster's (cut off from etcd, or waiting for the node that "
           "writes verdicts)\n");
  if (!r.value("drills", json::array()).empty()) {
    printf("\n");
    print_drills(r["drills"]);
  }
  if (r.contains("cluster")) print_cluster(r["cluster"]);
  const auto& orphans = r.value("orphans", json::array());
  if (!orphans.empty()) {
    printf("\nstored state for endpoints the config no longer has (kept):\n");
    for (const auto& o : orphans) printf("  %s\n", str(o).c_str());
  }
}

void print_change(const json& r) {
  printf("%s %s: weight %s, %s (override %s)%s — journal #%s\n", str(r["record"]).c_str(), str(r["endpoint"]).c_str(),
         str(r["weight"]).c_str(), r["up"].get<bool>() ? "up" : "DOWN", str(r["override"]).c_str(),
         r.contains("until") ? (" until " + str(r["until"])).c_str() : "", str(r["seq"]).c_str());
}

void print_region_change(const json& r, const char* done) {
  if (r["changed"].empty()) {
    printf("region %s: every endpoint (%zu) already %s; nothing written\n", str(r["region"]).c_str(),
           r["unchanged"].size(), done);
    return;
  }
  printf("%s %zu endpoints of region %s%s%s — journal #%s\n", done, r["changed"].size(), str(r["region"]).c_str(),
         r.contains("zone") ? (" in " + str(r["zone"])).c_str() : "",
         r.contains("until") ? (" until " + str(r["until"])).c_str() : "", str(r["seq"]).c_str());
  for (const auto& k : r["changed"]) printf("  %s\n", str(k).c_str());
  if (!r["unchanged"].empty()) printf("%zu already %s, left as they were\n", r["unchanged"].size(), done);
  for (const auto& k : r.value("no_endpoint_up", json::array()))
    printf("warning: %s has no endpoint up: it answers from all of them (fails open), or NODATA with fail_closed\n",
           str(k).c_str());
}

void print_explain(const json& r) {
  printf("%s %s, policy %s, client %s\n", str(r["record"]).c_str(), str(r["type"]).c_str(), str(r["policy"]).c_str(),
         str(r["client"]).c_str());
  for (const auto& s : r["steps"]) printf("  %s\n", str(s).c_str());
  std::string answer;
  for (const auto& a : r["answer"]) answer += (answer.empty() ? "" : ", ") + str(a);
  printf("answer: %s%s\n", answer.empty() ? "none (NODATA)" : answer.c_str(),
         r["scope"].get<int>() ? (" (ECS scope /" + str(r["scope"]) + ")").c_str() : "");
}

std::string age(uint64_t s) {  // "3d 4h", "2h 5m", "40s"
  char b[64];
  if (s >= 86400)
    snprintf(b, sizeof b, "%llud %lluh", (unsigned long long)(s / 86400), (unsigned long long)(s % 86400 / 3600));
  else if (s >= 3600)
    snprintf(b, sizeof b, "%lluh %llum", (unsigned long long)(s / 3600), (unsigned long long)(s % 3600 / 60));
  else if (s >= 60)
    snprintf(b, sizeof b, "%llum", (unsigned long long)(s / 60));
  else
    snprintf(b, sizeof b, "%llus", (unsigned long long)s);
  return b;
}

void print_history(const json& r) {
  // In a cluster every entry names the node that made the change.
  bool nodes = false;
  for (const auto& e : r["entries"]) nodes |= e.contains("node");
  std::vector<std::vector<std::string>> rows{{"#", "WHEN", "WHO", "ACTION", "ENDPOINT", "FROM", "TO", "REASON"}};
  if (nodes) rows[0].insert(rows[0].begin() + 2, "NODE");
  for (const auto& e : r["entries"]) {
    std::string who = e.contains("uid") ? "uid " + str(e["uid"]) : e.value("by", std::string("?"));
    std::string to = e.contains("to") ? str(e["to"]) : "";
    if (e.contains("until")) to += " until " + str(e["until"]);
    std::string endpoint = e.contains("endpoint") ? str(e["endpoint"]) : "";
    if (e.contains("region"))  // drain|undrain --region: the region and how many endpoints
      endpoint = "region " + str(e["region"]) + (e.contains("zone") ? " in " + str(e["zone"]) : "") + " (" +
                 str(e["count"]) + " endpoints)";
    else if (e.contains("count"))  // the end of a timed region drain: how many, and the first
      endpoint = str(e["count"]) + " endpoints (" + str(e["endpoints"][0]) + ", ...)";
    if (e.contains("record")) {  // hold / failback: a record and the endpoints held back
      endpoint = str(e["record"]);
      if (e.contains("endpoints")) {
        std::string list;
        for (const auto& x : e["endpoints"]) list += (list.empty() ? "" : ",") + str(x);
        endpoint += " (" + list + ")";
      }
    }
    if (str(e.value("action", json(""))) == "seed")
      endpoint = "(cluster state from this node: " + str(e.value("weights", json(0))) + " weights, " +
                 str(e.value("overrides", json(0))) + " overrides)";
    std::vector<std::string> row{str(e.value("seq", json(""))), str(e.value("at", json(""))), who,
                                 str(e.value("action", json(""))), endpoint,
                                 e.contains("from") ? str(e["from"]) : (e.contains("was") ? str(e["was"]) : ""), to,
                                 e.value("reason", e.value("detail", std::string()))};
    if (nodes) row.insert(row.begin() + 2, e.contains("node") ? str(e["node"]) : "-");
    rows.push_back(std::move(row));
  }
  print_table(rows);
}

void print_cluster(const json& c) {
  printf("\ncluster %s (node %s): %s, applied revision %s, lag %s", str(c["prefix"]).c_str(), str(c["node"]).c_str(),
         c["connected"].get<bool>() ? "connected" : "DISCONNECTED", str(c["applied_revision"]).c_str(),
         str(c["lag"]).c_str());
  if (!c["connected"].get<bool>())
    printf("\n  etcd unreachable%s: answering from the state applied %s s ago%s%s",
           c.contains("error") ? "" : " so far", c["state_age_s"].is_null() ? "?" : str(c["state_age_s"]).c_str(),
           c.contains("error") ? " — " : "", c.contains("error") ? str(c["error"]).c_str() : "");
  if (int64_t off = c.value("clock_offset_ms", int64_t{0}); std::abs(off) >= 100)
    printf("\n  this host's clock is %.1f s %s the cluster's: times here follow the cluster's", std::abs(off) / 1000.0,
           off < 0 ? "ahead of" : "behind");
  printf("\n");
  std::vector<std::vector<std::string>> rows{{"  NODE", "VERSION", "APPLIED", "LAG", "HEARTBEAT", "CONFIG DIGEST"}};
  for (const auto& n : c["nodes"]) {
    std::string digest = str(n["digest"]);
    if (n["digest_mismatch"].get<bool>()) digest += "  DIFFERS from the other nodes";
    char age[32];
    snprintf(age, sizeof age, "%.1fs ago", n["heartbeat_age_s"].get<double>());
    rows.push_back({"  " + str(n["node"]) + (n["self"].get<bool>() ? " (this)" : ""), str(n["version"]),
                    str(n["applied_revision"]), str(n["lag"]), age, digest});
  }
  print_table(rows);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // https: OpenSSL writes to a socket the server may have closed
  CLI::App app{"vanectl — control a running vaned over its admin socket"};
  app.require_subcommand(1);
  std::string socket_path, record, endpoint, reason, state, for_text, qname, qtype, client, weight;
  bool as_json = false;
  int limit = 20;
  app.add_option("-s,--socket", socket_path, "admin socket (default: admin.socket of ./vane.yaml, else the demo's)");
  vane::admin::ApiTarget api;
  std::string token_file;
  auto* url = app.add_option("--url", api.url, "use the HTTP API at this URL instead of the socket (with --token-file)");
  app.add_option("--token-file", token_file, "the API token's file (its first line)")->needs(url);
  app.add_option("--cacert", api.ca_file, "https: the CA that signed vaned's certificate")->needs(url);
  app.add_option("--cert", api.cert_file, "https: a client certificate (when api.tls.client_ca asks for one)")->needs(url);
  app.add_option("--key", api.key_file, "https: the client certificate's key")->needs(url);
  app.add_flag("--json", as_json, "print the raw JSON answer");
  auto* status = app.add_subcommand("status", "zones, records, endpoints, state and weights");
  std::string status_filter;
  status->add_option("ZONE|RECORD", status_filter, "only this zone (and its records) or this record");
  auto* w = app.add_subcommand("weight", "set an endpoint's weight (persisted), e.g. the 255/0 flip");
  w->add_option("RECORD", record, "owner name, with /TYPE when it has several steered types")->required();
  w->add_option("ENDPOINT", endpoint, "endpoint name")->required();
  w->add_option("N", weight, "0..255, or 'config' to return to the config's weight")->required();
  auto* drain = app.add_subcommand("drain", "take an endpoint out of answers until undrained (or --for a while)");
  auto* undrain = app.add_subcommand("undrain", "put a drained endpoint back");
  std::string region, region_zone;
  for (auto* sub : {drain, undrain}) {
    sub->add_option("RECORD", record, "owner name, with /TYPE when it has several steered types");
    sub->add_option("ENDPOINT", endpoint, "endpoint name");
    sub->add_option("--region", region, "every endpoint of this region instead, in every record (one change)");
    sub->add_option("--zone", region_zone, "with --region: in this zone's records only");
  }
  auto* force = app.add_subcommand("force", "force an endpoint up or down (auto: follow health again)");
  force->add_option("RECORD", record, "owner name, with /TYPE when it has several steered types")->required();
  force->add_option("ENDPOINT", endpoint, "endpoint name")->required();
  force->add_option("STATE", state, "up | down | auto")->required()->check(CLI::IsMember({"up", "down", "auto"}));
  for (auto* sub : {drain, force})
    sub->add_option("--for", for_text, "expire by itself after this long (90s, 15m, 2h), across restarts too");
  for (auto* sub : {w, drain, undrain, force}) sub->add_option("--reason", reason, "why (kept in the journal)");
  std::string at, over;
  int lower_ttl = 0;
  unsigned drill_id = 0;
  w->add_option("--over", over, "ramp there gradually over this long (10m), instead of at once");
  auto* drill = app.add_subcommand("drill", "schedule a drill: force an endpoint down for a while, TTL lowered ahead");
  drill->add_option("RECORD", record, "owner name, with /TYPE when it has several steered types");
  drill->add_option("ENDPOINT", endpoint, "endpoint name");
  drill->add_option("--at", at, "start: +DURATION (+35s, +2h) or a UTC time (2026-11-26T10:00:00Z)");
  drill->add_option("--for", for_text, "how long the endpoint stays down (15m)");
  drill->add_option("--lower-ttl", lower_ttl, "answer with this TTL from (start - TTL - 5 s) to the end")
      ->check(CLI::Range(1, 2147483647));
  drill->add_option("--reason", reason, "why (kept in the journal)");
  auto* drill_list = drill->add_subcommand("list", "scheduled and running drills");
  auto* drill_cancel = drill->add_subcommand("cancel", "cancel a drill (a running one ends now)");
  drill_cancel->add_option("ID", drill_id, "the drill's number (drill list)")->required();
  drill_cancel->add_option("--reason", reason, "why (kept in the journal)");
  auto* fb = app.add_subcommand("failback", "end a failover record's hold: traffic returns to its preferred tier");
  fb->add_option("RECORD", record, "owner name, with /TYPE when it has several steered types")->required();
  fb->add_option("--reason", reason, "why (kept in the journal)");
  auto* explain = app.add_subcommand("explain", "which endpoints a client gets for a name, and why");
  explain->add_option("QNAME", qname, "the steered name")->required();
  explain->add_option("TYPE", qtype, "A, AAAA or CNAME (default: the name's steered type)");
  explain->add_option("--client", client, "client address or ECS subnet, e.g. 10.1.2.3 or 10.1.2.0/24");
  auto* reload =
      app.add_subcommand("reload", "re-read the config and zones; a bad one is refused, the old keeps serving");
  std::string reload_zone;
  reload->add_option("ZONE", reload_zone, "only this zone: its files read again, every other zone kept as it is");
  auto* history = app.add_subcommand("history", "journal of admin changes and override expiries, newest last");
  history->add_option("--limit", limit, "how many entries (default 20)")->check(CLI::Range(1, 10000));
  std::string zone, role, algorithm;
  unsigned tag = 0;
  auto* dnssec = app.add_subcommand("dnssec", "keys of a signed zone: DS for the parent, list, make, roll over");
  dnssec->require_subcommand(1);
  auto* ds = dnssec->add_subcommand("ds", "the DS records (SHA-256) to give the parent, one per KSK/CSK");
  auto* keys = dnssec->add_subcommand("keys", "every key: tag, algorithm, role, state, age");
  auto* keygen = dnssec->add_subcommand("keygen", "make a key (published only while another has its duty)");
  auto* activate = dnssec->add_subcommand("activate", "rollover switch: this key signs, the old one stays published");
  auto* retire = dnssec->add_subcommand("retire", "take a published key out of the DNSKEY RRset");
  for (auto* sub : {ds, keys, keygen, activate, retire}) sub->add_option("ZONE", zone, "the zone")->required();
  for (auto* sub : {activate, retire}) sub->add_option("TAG", tag, "the key's tag (dnssec keys)")->required();
  keygen->add_option("--role", role, "csk (default), ksk or zsk")->check(CLI::IsMember({"csk", "ksk", "zsk"}));
  keygen->add_option("--algorithm", algorithm, "ecdsap256sha256 or ed25519 (default: the zone's)");
  auto* zone_cmd = app.add_subcommand("zone", "secondary zones: refresh (check the primary now) or retransfer (AXFR)");
  zone_cmd->require_subcommand(1);
  auto* zone_refresh = zone_cmd->add_subcommand("refresh", "ask the primary for its SOA now; transfer when newer");
  auto* zone_retransfer = zone_cmd->add_subcommand("retransfer", "transfer the whole zone again (AXFR)");
  for (auto* sub : {zone_refresh, zone_retransfer}) sub->add_option("ZONE", zone, "the zone")->required();
  for (auto* sub : {status, w, drain, undrain, force, fb, drill, drill_list, drill_cancel, explain, reload, history, ds,
                    keys, keygen, activate, retire, zone_refresh, zone_retransfer})
    sub->add_flag("--json", as_json, "print the raw JSON answer");
  CLI11_PARSE(app, argc, argv);
  if (socket_path.empty()) socket_path = default_socket();

  json req;
  if (status->parsed()) req = {{"cmd", "status"}};
  if (status->parsed() && !status_filter.empty()) req["filter"] = status_filter;
  if (reload->parsed()) req = {{"cmd", "reload"}};
  if (reload->parsed() && !reload_zone.empty()) req["zone"] = reload_zone;
  if (w->parsed()) {
    req = {{"cmd", "weight"}, {"record", record}, {"endpoint", endpoint}};
    if (weight == "config")
      req["weight"] = "config";
    else if (!weight.empty() && weight.size() <= 3 && weight.find_first_not_of("0123456789") == std::string::npos)
      req["weight"] = std::stoi(weight);
    else {
      fprintf(stderr, "vanectl: weight must be 0..255 or 'config'\n");
      return 2;
    }
  }
  for (auto* sub : {drain, undrain}) {
    if (!sub->parsed()) continue;
    if (region.empty() == (record.empty() || endpoint.empty()) || (!region.empty() && !record.empty()) ||
        (!region_zone.empty() && region.empty())) {
      fprintf(stderr, "vanectl: %s takes RECORD ENDPOINT, or --region REGION [--zone ZONE]\n", sub->get_name().c_str());
      return 2;
    }
    req = {{"cmd", sub->get_name()}};
    if (region.empty()) {
      req["record"] = record;
      req["endpoint"] = endpoint;
    } else {
      req["region"] = region;
      if (!region_zone.empty()) req["zone"] = region_zone;
    }
    if (sub == drain && !for_text.empty()) req["for"] = for_text;
  }
  if (force->parsed()) {
    req = {{"cmd", "force"}, {"record", record}, {"endpoint", endpoint}, {"state", state}};
    if (!for_text.empty()) req["for"] = for_text;
  }
  if (fb->parsed()) req = {{"cmd", "failback"}, {"record", record}};
  if (w->parsed() && !over.empty()) req["over"] = over;
  if (drill->parsed()) {
    if (drill_list->parsed()) {
      req = {{"cmd", "drill"}, {"action", "list"}};
    } else if (drill_cancel->parsed()) {
      req = {{"cmd", "drill"}, {"action", "cancel"}, {"id", drill_id}};
    } else {
      if (record.empty() || endpoint.empty() || at.empty() || for_text.empty()) {
        fprintf(stderr, "vanectl: drill RECORD ENDPOINT --at TIME|+DURATION --for DURATION [--lower-ttl S] [--reason TEXT]"
                        " | drill list | drill cancel ID\n");
        return 2;
      }
      req = {{"cmd", "drill"}, {"record", record}, {"endpoint", endpoint}, {"at", at}, {"for", for_text}};
      if (lower_ttl) req["lower_ttl"] = lower_ttl;
    }
  }
  if (!reason.empty()) req["reason"] = reason;
  if (explain->parsed()) {
    req = {{"cmd", "explain"}, {"qname", qname}};
    if (!qtype.empty()) req["qtype"] = qtype;
    if (!client.empty()) req["client"] = client;
  }
  if (history->parsed()) req = {{"cmd", "history"}, {"limit", limit}};
  if (dnssec->parsed()) {
    const char* action = ds->parsed() ? "ds" : keys->parsed() ? "keys" : keygen->parsed() ? "keygen"
                         : activate->parsed()                  ? "activate"
                                                               : "retire";
    req = {{"cmd", "dnssec"}, {"action", action}, {"zone", zone}};
    if (activate->parsed() || retire->parsed()) req["tag"] = tag;
    if (!role.empty()) req["role"] = role;
    if (!algorithm.empty()) req["algorithm"] = algorithm;
  }

  if (zone_cmd->parsed())
    req = {{"cmd", "zone"}, {"action", zone_refresh->parsed() ? "refresh" : "retransfer"}, {"zone", zone}};

  vane::Result<json> r = json();
  if (!api.url.empty()) {
    if (token_file.empty()) {
      fprintf(stderr, "vanectl: --url needs --token-file (a file with the API token)\n");
      return 2;
    }
    auto token = vane::read_token_file(token_file);
    if (!token) {
      fprintf(stderr, "vanectl: %s\n", token.error().to_string().c_str());
      return 2;
    }
    api.token = *token;
    r = vane::admin::call_api(api, req, 120000);
  } else {
    r = vane::admin::call(socket_path, req, 120000);
  }
  if (!r) {
    fprintf(stderr, "vanectl: %s\n", r.error().to_string().c_str());
    return 2;
  }
  const json& answer = *r;
  bool ok = answer.value("ok", false);
  if (as_json) {
    printf("%s\n", answer.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return ok ? 0 : 1;
  }
  if (!ok) {
    fprintf(stderr, "vanectl: %s\n", str(answer.value("error", json("unknown error"))).c_str());
    return 1;
  }
  if (status->parsed()) print_status(answer);
  if (reload->parsed()) printf("%s\n", str(answer.value("message", json(""))).c_str());
  if (w->parsed() && !over.empty())
    printf("%s: ramping from %s to %s over %s, until %s — journal #%s\n", str(answer["endpoint"]).c_str(),
           str(answer["from"]).c_str(), str(answer["to"]).c_str(), str(answer["over"]).c_str(),
           str(answer["until"]).c_str(), str(answer["seq"]).c_str());
  else if (answer.contains("region"))
    print_region_change(answer, drain->parsed() ? "drained" : "undrained");
  else if (w->parsed() || drain->parsed() || undrain->parsed() || force->parsed())
    print_change(answer);
  if (drill_list->parsed()) print_drills(answer["drills"]);
  if (drill_cancel->parsed())
    printf("drill %s cancelled (was %s) — journal #%s\n", str(answer["drill"]).c_str(), str(answer["was"]).c_str(),
           str(answer["seq"]).c_str());
  if (drill->parsed() && !drill_list->parsed() && !drill_cancel->parsed())
    printf("drill %s: %s down from %s until %s%s — journal #%s\n", str(answer["drill"]).c_str(),
           str(answer["endpoint"]).c_str(), str(answer["starts"]).c_str(), str(answer["until"]).c_str(),
           answer.contains("lower_ttl")
               ? (", TTL " + str(answer["lower_ttl"]) + " from " + str(answer["ttl_lowered_from"])).c_str()
               : "",
           str(answer["seq"]).c_str());
  if (fb->parsed()) {
    std::string eps;
    for (const auto& e : answer["released"]) eps += (eps.empty() ? "" : ", ") + str(e);
    printf("%s: released %s — journal #%s\n", str(answer["record"]).c_str(), eps.c_str(), str(answer["seq"]).c_str());
  }
  if (explain->parsed()) print_explain(answer);
  if (zone_cmd->parsed())
    printf("%s: %s, serial %s from %s\n", str(answer["zone"]).c_str(), str(answer["result"]).c_str(),
           str(answer["serial"]).c_str(), str(answer["primary"]).c_str());
  if (history->parsed()) print_history(answer);
  if (ds->parsed())
    for (const auto& k : answer["ds"]) printf("%s\n", str(k["ds"]).c_str());
  if (keys->parsed()) {
    printf("%-6s %-16s %-4s %-10s %-21s %s\n", "TAG", "ALGORITHM", "ROLE", "STATE", "CREATED", "AGE");
    for (const auto& k : answer["keys"])
      printf("%-6s %-16s %-4s %-10s %-21s %s\n", str(k["tag"]).c_str(), str(k["algorithm"]).c_str(),
             str(k["role"]).c_str(), str(k["state"]).c_str(), str(k["created"]).c_str(),
             age(k["age_s"].get<uint64_t>()).c_str());
  }
  if (keygen->parsed()) {
    const json& k = answer["key"];
    printf("%s: made %s %s key %s (%s)%s\n", str(answer["zone"]).c_str(), str(k["algorithm"]).c_str(),
           str(k["role"]).c_str(), str(k["tag"]).c_str(), str(k["state"]).c_str(),
           str(k["state"]) == "published" ? " — it signs once you run: vanectl dnssec activate ZONE TAG" : "");
  }
  if (activate->parsed() || retire->parsed())
    for (const auto& c : answer["changed"])
      printf("%s: key %s is now %s\n", str(answer["zone"]).c_str(), str(c["tag"]).c_str(), str(c["state"]).c_str());
  return 0;
}
