/**
 * `/ui`: one self-contained HTML page (no external assets) that lists services, instances,
 * proxy routes (a TCP route whose port could not be taken shows as failed, with the reason) and
 * members from the JSON API and refreshes every few seconds. A service's "explain" link opens
 * the same explanation as `berth explain SERVICE` (GET /v1/berth/explain): why each instance is
 * or is not served, its routes and who serves them, the proxy's targets and each member's
 * ejections. Every value is set as text (textContent), never as HTML.
 *
 * @module
 */

export const UI_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>berth</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
  #status { color: #5b6475; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e3e6ec; }
  th { background: #eef0f4; font-weight: 600; }
  .passing, .alive { color: #1a7f37; } .warning { color: #9a6700; }
  .critical, .down, .failed { color: #cf222e; }
  #error { color: #cf222e; }
  input { padding: .25rem .4rem; margin-left: .5rem; }
  a.explain { margin-left: .5rem; font-size: .85em; cursor: pointer; color: #0969da; }
  #explain { background: #fff; border: 1px solid #e3e6ec; padding: .6rem 1rem; margin-top: 1rem; }
  #explain[hidden] { display: none; }
  #explain h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
  #explain ul { margin: .2rem 0; padding-left: 1.2rem; }
  #explain-close { float: right; cursor: pointer; }
</style>
</head>
<body>
<h1>berth</h1>
<div id="status">loading…</div>
<div id="error"></div>
<h2>Services</h2>
<table id="services"><thead><tr><th>service</th><th>instances</th><th>passing</th><th>tags</th></tr></thead><tbody></tbody></table>
<section id="explain" hidden>
<button id="explain-close">close</button>
<h2 id="explain-title"></h2>
<ul id="explain-summary"></ul>
<h3>Instances</h3>
<table id="explain-instances"><thead><tr><th>id</th><th>address</th><th>node</th><th>weight</th><th>status</th><th>why</th></tr></thead><tbody></tbody></table>
<h3>Routes</h3>
<table id="explain-routes"><thead><tr><th>route</th><th>served by</th></tr></thead><tbody></tbody></table>
<h3>Conflicts</h3>
<ul id="explain-conflicts"></ul>
<h3>Rejected labels</h3>
<table id="explain-rejected"><thead><tr><th>container</th><th>member</th><th>problem</th></tr></thead><tbody></tbody></table>
<h3>Proxy <span id="explain-options"></span></h3>
<table id="explain-targets"><thead><tr><th>instance</th><th>address</th><th>node</th><th>target</th></tr></thead><tbody></tbody></table>
<h3>Ejections by member</h3>
<table id="explain-ejections"><thead><tr><th>member</th><th>proxy</th><th>ejected</th></tr></thead><tbody></tbody></table>
</section>
<h2>Instances <input id="filter" placeholder="filter"></h2>
<table id="instances"><thead><tr><th>id</th><th>service</th><th>address</th><th>node</th><th>status</th><th>output</th></tr></thead><tbody></tbody></table>
<h2>Routes <span id="proxy"></span></h2>
<table id="routes"><thead><tr><th>route</th><th>service</th><th>state</th><th>detail</th></tr></thead><tbody></tbody></table>
<h2>Members</h2>
<table id="members"><thead><tr><th>name</th><th>address</th><th>role</th><th>state</th><th>last contact</th><th>status</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const REFRESH_MS = 3000;
function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      td.textContent = String(text);
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  }));
}
// The ACL token: /ui?token=SECRET once; kept in this tab only, and dropped from the address.
const given = new URLSearchParams(location.search).get("token");
if (given !== null) {
  sessionStorage.setItem("berth-token", given);
  history.replaceState(null, "", location.pathname + location.hash);
}
const TOKEN = sessionStorage.getItem("berth-token");
async function get(path) {
  const r = await fetch(path + (path.includes("?") ? "&" : "?") + "stale",
    { headers: TOKEN ? { "X-Consul-Token": TOKEN } : {} });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
  return r.json();
}
async function refresh() {
  try {
    const [status, instances, members, routes] = await Promise.all([
      get("/v1/berth/status"), get("/v1/berth/instances"), get("/v1/berth/members"),
      get("/v1/berth/routes"),
    ]);
    document.getElementById("status").textContent = "node " + status.node + " · " + status.role +
      " · leader " + (status.leader ?? "none") + " · term " + status.term + " · applied " +
      status.appliedIndex;
    const services = new Map();
    for (const i of instances) {
      const s = services.get(i.service) ?? { n: 0, passing: 0, tags: new Set() };
      s.n++; if (i.status === "passing") s.passing++;
      for (const t of i.tags) s.tags.add(t);
      services.set(i.service, s);
    }
    fill("services", [...services].sort().map(([name, s]) =>
      [name, s.n, [s.passing, s.passing === s.n ? "passing" : "critical"], [...s.tags].join(", ")]));
    for (const tr of document.querySelectorAll("#services tbody tr")) {
      const name = tr.firstChild.textContent;
      const a = document.createElement("a");
      a.className = "explain";
      a.textContent = "explain";
      a.addEventListener("click", () => {
        explaining = name;
        history.replaceState(null, "", "#explain=" + encodeURIComponent(name));
        explain();
      });
      tr.firstChild.append(a);
    }
    if (explaining !== null && Date.now() - explainedAtMs >= EXPLAIN_REFRESH_MS) await explain();
    const f = document.getElementById("filter").value.toLowerCase();
    fill("instances", instances
      .filter((i) => !f || (i.id + " " + i.service + " " + i.node).toLowerCase().includes(f))
      .map((i) => [i.id, i.service, i.address + ":" + i.port, i.node, [i.status, i.status], i.output]));
    document.getElementById("proxy").textContent = routes.listen === null && !routes.https
      ? "(proxy off)"
      : "(proxy " + [routes.listen, routes.https && "https " + routes.https].filter(Boolean).join(", ") + ")";
    fill("routes", [
      ...routes.tcp.map((r) => ["tcp :" + r.port, r.service, [r.state, r.state], r.error ?? ""]),
      ...(routes.udp ?? []).map((r) => ["udp :" + r.port, r.service, [r.state, r.state],
        r.error ?? r.flows + " flow" + (r.flows === 1 ? "" : "s")]),
      ...routes.http.map((r) => [(r.host ?? "*") + r.prefix, r.service,
        [r.targets > 0 ? "serving" : "no instance", r.targets > 0 ? "passing" : "critical"],
        r.targets + " target" + (r.targets === 1 ? "" : "s")]),
    ]);
    fill("members", members.map((m) => [m.name, m.address, m.role, m.state,
      m.lastContactMs === null ? "never" : m.lastContactMs + " ms", [m.status, m.status]]));
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = String(e.message ?? e);
  }
}
// The service named by a /ui#explain=NAME hash, or null (also for a malformed %-escape: the
// dashboard must start whatever the address says).
function explainTarget(hash) {
  if (!hash.startsWith("#explain=")) return null;
  try {
    return decodeURIComponent(hash.slice("#explain=".length)) || null;
  } catch {
    return null;
  }
}
// The service whose explanation is open, or null; /ui#explain=NAME opens it at once. It is asked
// again at most every EXPLAIN_REFRESH_MS (each time every member is asked), not on each refresh
// or keystroke in the filter.
let explaining = explainTarget(location.hash);
let explainedAtMs = 0;
const EXPLAIN_REFRESH_MS = 15000;
function verdicts(i) {
  const parts = [];
  for (const [name, v] of Object.entries(i.sources)) {
    if (v !== null && v.status !== "passing") parts.push(name + " " + v.status + (v.output ? ": " + v.output : ""));
  }
  return parts.join("; ") || "-";
}
async function explain() {
  explainedAtMs = Date.now();
  const box = document.getElementById("explain");
  try {
    const e = await get("/v1/berth/explain?service=" + encodeURIComponent(explaining));
    box.hidden = false;
    document.getElementById("explain-title").textContent = "Explain " + e.service + " (asked on " + e.member + ")";
    const list = (id, lines) => document.getElementById(id).replaceChildren(...lines.map((l) => {
      const li = document.createElement("li"); li.textContent = l; return li;
    }));
    list("explain-summary", e.summary);
    list("explain-conflicts", e.routes === null || e.routes.conflicts.length === 0 ? ["(none)"] : e.routes.conflicts);
    fill("explain-rejected", (e.rejected ?? []).length === 0 ? [["(none)", "", ""]]
      : e.rejected.map((x) => [x.container, x.member, [x.message, "critical"]]));
    fill("explain-instances", e.instances.map((i) => [i.id, i.address + ":" + i.port, i.node, i.weight,
      [i.status, i.status], verdicts(i)]));
    const r = e.routes;
    const listeners = new Map(e.tcpListeners.map((t) => [t.port, t]));
    const udpListeners = new Map((e.udpListeners ?? []).map((t) => [t.port, t]));
    fill("explain-routes", r === null ? [] : [
      ...r.http.map((h) => [(h.host ?? "*") + h.prefix + (h.edge ? " (edge domain)" : ""),
        [h.servedBy ?? "-", h.servedBy === e.service ? "passing" : "critical"]]),
      ...r.tcp.map((t) => {
        const l = listeners.get(t.port);
        return ["tcp :" + t.port, [(t.servedBy ?? "-") + (l ? " (" + l.state + (l.error ? ": " + l.error : "") + ")" : ""),
          t.servedBy === e.service && (!l || l.state !== "failed") ? "passing" : "critical"]];
      }),
      ...(r.udp ?? []).map((u) => {
        const l = udpListeners.get(u.port);
        return ["udp :" + u.port, [(u.servedBy ?? "-") + (l ? " (" + l.state + (l.error ? ": " + l.error : "") + ")" : ""),
          u.servedBy === e.service && (!l || l.state !== "failed") ? "passing" : "critical"]];
      }),
    ]);
    document.getElementById("explain-options").textContent = r === null ? (e.proxy === "off" ? "(proxy off)" : "(no route)")
      : "(" + r.options.policy + ", " + r.options.proto + Object.entries(r.options.settings ?? {})
        .map(([k, v]) => ", " + k + "=" + v).join("") + ")";
    fill("explain-targets", r === null ? [] : r.options.members.map((m) => [m.instance, m.address + ":" + m.port, m.node,
      [m.target ? (m.udp ? "yes (UDP routes only)" : "yes") : "no: " + m.why, m.target ? "passing" : "critical"]]));
    fill("explain-ejections", e.ejections.map((m) => [m.member,
      [m.state === "unknown" ? "unknown (" + m.error + ")" : m.state, m.state === "unknown" ? "warning" : ""],
      m.ejected.map((x) => x.instance).join(", ") || "-"]));
  } catch (err) {
    box.hidden = false;
    document.getElementById("explain-title").textContent = "Explain " + explaining + ": " + String(err.message ?? err);
  }
}
document.getElementById("explain-close").addEventListener("click", () => {
  explaining = null;
  history.replaceState(null, "", location.pathname);
  document.getElementById("explain").hidden = true;
});
refresh();
setInterval(refresh, REFRESH_MS);
document.getElementById("filter").addEventListener("input", refresh);
</script>
</body>
</html>
`;
