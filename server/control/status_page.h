// The status page served at / on http.listen: static HTML + JS compiled into
// vaned (no CDN, nothing to install). Read-only: it polls /api/status.
#pragma once

namespace vane::server {

inline constexpr const char* kStatusPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vane status</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #1b1f23; background: #fafbfc; }
 h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
 .meta { color: #586069; } .rec { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: .6em .9em; margin: .7em 0; }
 table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #eaecef; }
 th { font-weight: 600; color: #586069; font-size: .9em; }
 .up { color: #22863a; font-weight: 600; } .down { color: #cb2431; font-weight: 700; }
 .chip { display: inline-block; padding: 0 .45em; margin: 0 .2em .1em 0; border-radius: 3px; font-size: .85em; }
 .chip.up { background: #dcffe4; } .chip.down { background: #ffdce0; } .chip.stale { background: #eee; color: #888; font-weight: 400; }
 .bar { display: inline-block; height: .7em; background: #0366d6; vertical-align: middle; margin-right: .4em; }
 .ov { background: #fff5b1; padding: 0 .4em; border-radius: 3px; } #err { color: #cb2431; }
 svg.share { display: block; margin: .4em 0; background: #fff; } svg.share text { font-size: 10px; fill: #586069; }
 .legend span { display: inline-block; margin-right: .8em; font-size: .85em; } .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: middle; }
 .held { background: #ffdce0; padding: .1em .5em; border-radius: 3px; margin: .3em 0; display: inline-block; }
</style></head><body>
<h1>vane <span id="ver"></span></h1>
<div class="meta" id="meta">loading…</div><div id="err"></div>
<form class="meta" id="find">zone or record <input name="filter" id="filter" size="32"> <button>show</button> <a href="/">all</a></form>
<div class="meta" id="listed"></div>
<div id="records"></div>
<h2>Drills</h2>
<table><thead><tr><th>#</th><th>endpoint</th><th>start</th><th>end</th><th>lower TTL</th><th>state</th><th>why</th></tr></thead>
<tbody id="drills"></tbody></table>
<h2>Last 20 events</h2>
<table><thead><tr><th>#</th><th>when</th><th>who</th><th>action</th><th>endpoint</th><th>from → to</th><th>why</th></tr></thead>
<tbody id="events"></tbody></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
function dur(s) {
  return s >= 3600 ? Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m" : s >= 60 ? Math.floor(s / 60) + "m" + (s % 60) + "s" : s + "s";
}
// ?filter=ZONE|RECORD: only those (the form above sets it).
const filter = new URLSearchParams(location.search).get("filter") || "";
$("filter").value = filter;
const left = (until) => dur(Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000)));
// A failover record's tier, and its hold: since when, and how long the preferred tier has been healthy.
function failback(r) {
  if (r.failback === undefined) return "";
  let s = `, failback ${esc(r.failback)}`;
  if (r.tier === null) s += ` · <span class="down">no tier up (failing open)</span>`;
  else if (r.failed_over) s += ` · <span class="down">failed over to tier ${r.tier}</span> (preferred ${r.preferred_tier})`;
  if (!r.held) return `<span class="meta">${s}</span>`;
  return `<span class="meta">${s}</span><br><span class="held" data-held="${esc(r.name + "/" + r.type)}">held on tier ${r.tier}` +
    ` since ${esc(r.held_since ?? "?")}` + (r.held_s !== undefined ? ` (${dur(r.held_s)})` : "") + " · preferred tier " +
    (r.preferred_healthy_s === null || r.preferred_healthy_s === undefined ? "not healthy" : "healthy for " + dur(r.preferred_healthy_s)) +
    ` · <code>vanectl failback ${esc(r.name)}</code> releases it</span>`;
}
const COLORS = ["#0366d6", "#d73a49", "#28a745", "#6f42c1", "#e36209", "#005cc5", "#b08800", "#6a737d"];
// Answer share per endpoint over the last 15 minutes, with the journal's
// events on the record (flips, drills, ramps, holds, admin changes) as markers.
function chart(r) {
  const c = r.chart;
  if (!c) return "";
  const W = 640, H = 110, L = 30, B = 16, win = c.window_s * 1000;
  const x = (t) => L + (W - L - 4) * (1 + t / win), y = (v) => 4 + (H - B - 8) * (1 - v);
  let svg = `<svg class="share" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" data-record="${esc(r.name + "/" + r.type)}">`;
  svg += `<line x1="${L}" y1="${y(0)}" x2="${W - 4}" y2="${y(0)}" stroke="#d1d5da"/><line x1="${L}" y1="${y(1)}" x2="${W - 4}" y2="${y(1)}" stroke="#eaecef"/>`;
  svg += `<text x="2" y="${y(1) + 4}">100%</text><text x="10" y="${y(0)}">0%</text>`;
  for (const m of [15, 10, 5, 0])
    svg += `<text x="${x(-m * 60000)}" y="${H - 3}" text-anchor="${m ? "middle" : "end"}">${m ? "-" + m + "m" : "now"}</text>`;
  for (const m of c.markers) {
    const mx = x(m.t).toFixed(1);
    svg += `<line class="marker" data-marker="${esc(m.action)}" x1="${mx}" y1="${y(1)}" x2="${mx}" y2="${y(0)}" stroke="#f9c513" stroke-width="2">` +
      `<title>${esc(m.action)} ${esc(m.endpoint)}${m.to !== null ? " → " + esc(m.to) : ""}</title></line>`;
  }
  r.endpoints.forEach((e, i) => {
    const v = c.shares[e.name] || [];
    let pts = "", segs = [];
    v.forEach((s, k) => {
      if (s === null) { if (pts) segs.push(pts); pts = ""; return; }
      pts += `${x(c.t[k]).toFixed(1)},${y(s).toFixed(1)} `;
    });
    if (pts) segs.push(pts);
    for (const p of segs)
      svg += `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6" points="${p.trim()}"><title>${esc(e.name)}</title></polyline>`;
  });
  svg += "</svg>";
  const legend = r.endpoints.map((e, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(e.name)}</span>`).join("") +
    '<span><i style="background:#f9c513"></i>events (hover)</span>';
  return svg + `<div class="legend">${legend}</div>`;
}
function render(st) {
  $("ver").textContent = st.version;
  $("meta").textContent = `pid ${st.pid} · up ${st.uptime_s}s · generation ${st.generation} · ${st.workers} workers · ` +
    `listening on ${st.listen.join(" ")} · ${st.now}`;
  let html = "";
  for (const r of st.records) {
    html += `<div class="rec"><b>${esc(r.name)} ${esc(r.type)}</b> <span class="meta">${esc(r.policy)}, ttl ${r.ttl}</span>` +
      (r.ttl_now !== undefined && r.ttl_now !== r.ttl ? ` <span class="ov">TTL lowered to ${r.ttl_now}</span>` : "") + `${failback(r)}` +
      `<table><thead><tr><th>endpoint</th><th>address</th><th>state</th><th>vantages</th><th>weight</th><th>share</th><th>override</th></tr></thead><tbody>`;
    for (const e of r.endpoints) {
      const vs = Object.entries(e.vantages || {}).map(([v, x]) =>
        `<span class="chip ${x.fresh ? (x.up ? "up" : "down") : "stale"}" title="${esc(x.detail)}">${esc(v)}: ${x.up ? "up" : "down"}${x.fresh ? "" : " (stale)"}</span>`).join("");
      const share = Math.round((e.share || 0) * 100);
      let ov = e.override === "auto" ? "" : `<span class="ov">${esc(e.override)}${e.override_until ? " · " + left(e.override_until) + " left" : ""}</span>` +
        (e.override_reason ? ` <span class="meta">${esc(e.override_reason)}</span>` : "");
      html += `<tr data-endpoint="${esc(r.name + "/" + r.type + "/" + e.name)}"><td>${esc(e.name)}</td><td>${esc(e.address)}</td>` +
        `<td class="${e.up ? "up" : "down"}">${e.up ? "up" : "DOWN"}</td><td>${vs || '<span class="meta">no checks</span>'}</td>` +
        `<td class="weight">${e.weight}${e.admin_weight !== null && e.admin_weight !== undefined ? ' <span class="meta">(admin; config ' + e.config_weight + ")</span>" : ""}` +
        (e.ramp ? ` <span class="ov">→ ${e.ramp.to} in ${dur(e.ramp.ends_in_s)}</span>` : "") + `</td>` +
        `<td><span class="bar" style="width:${share}px"></span>${share}%</td><td>${ov}</td></tr>`;
    }
    html += "</tbody></table>" + chart(r) + "</div>";
  }
  $("records").innerHTML = html || '<p class="meta">no steered records</p>';
  // Beyond 200 records the page lists 200: those needing attention first.
  $("listed").textContent = st.records.length < st.records_total
    ? `${st.records.length} of ${st.records_total} steered records listed: those with an endpoint down, overridden, ` +
      "weighted by hand, ramping or held first, then the rest in zone order. Name a zone or record to see others." : "";
  $("drills").innerHTML = (st.drills || []).map((d) =>
    `<tr data-drill="${d.id}"><td>${d.id}</td><td>${esc(d.endpoint)}</td><td>${esc(d.start)}</td><td>${esc(d.end)}</td>` +
    `<td>${d.lower_ttl || "-"}</td><td>${esc(d.phase)}${d.starts_in_s !== undefined ? " · starts in " + dur(d.starts_in_s) : ""}` +
    `${d.ends_in_s !== undefined ? " · ends in " + dur(d.ends_in_s) : ""}</td><td>${esc(d.reason)}</td></tr>`).join("") ||
    '<tr><td colspan="7" class="meta">none scheduled</td></tr>';
  $("events").innerHTML = [...st.history].reverse().map((e) =>
    `<tr><td>${e.seq}</td><td>${esc(e.at)}</td><td>${esc(e.uid !== undefined ? "uid " + e.uid : e.by)}</td><td>${esc(e.action)}</td>` +
    `<td>${esc(e.endpoint ?? (e.record ? e.record + " (" + (e.endpoints || []).join(", ") + ")" : e.region ? "region " + e.region + (e.zone ? " in " + e.zone : "") + " (" + e.count + " endpoints)" : e.count ? e.count + " endpoints" : ""))}</td><td>${e.from !== undefined || e.was !== undefined || e.to !== undefined ? esc(e.from ?? e.was ?? "") + " → " + esc(e.to ?? "auto") : ""}</td><td>${esc(e.reason ?? e.detail ?? "")}</td></tr>`).join("");
}
async function poll() {
  try {
    const r = await fetch("/api/status" + (filter ? "?filter=" + encodeURIComponent(filter) : ""), {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const st = await r.json();
    if (st.ok === false) $("err").textContent = st.error;
    else {
      render(st);
      $("err").textContent = "";
    }
  } catch (e) {
    $("err").textContent = "cannot reach vaned: " + e.message;
  }
  setTimeout(poll, 2000);
}
poll();
</script></body></html>
)HTML";

}  // namespace vane::server
