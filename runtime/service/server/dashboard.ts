/**
 * The dashboard served at `GET /`: one self-contained HTML page (inline CSS and JS, no CDN, no
 * build step). It lists the jobs, submits new ones, and for the selected job follows
 * `GET /jobs/:id/events` (SSE read through fetch, so a bearer token can be sent) to draw a live
 * reward and loss chart (inline SVG), the actor table with health and restart counts, and the
 * failure/restart timeline. With chaos enabled each actor row has a kill button.
 *
 * @example
 * ```ts
 * app.get("/", (c) => c.html(dashboardHtml({ chaos: false })));
 * ```
 */

export interface DashboardOptions {
  chaos: boolean;
}

const DEFAULT_JOB = {
  trainer: { total_steps: 60, val_interval: 10 },
  data: { train_size: 256, val_size: 32, train_batch_size: 16 },
  worker: { actor: { ppo_mini_batch_size: 16 }, critic: { ppo_mini_batch_size: 16 } },
  checkpoint: { interval: 10 },
};

const CSS = `
:root { --bg:#0f1217; --panel:#171b22; --line:#2a303b; --text:#d8dee9; --dim:#8b94a3; --reward:#4fc3f7; --val:#ffd54f;
  --pg:#f48fb1; --vf:#aed581; --death:#ef5350; --restart:#66bb6a; --retry:#ffa726; --failed:#e040fb; --health:#42a5f5; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; gap:12px; align-items:center; padding:10px 16px; border-bottom:1px solid var(--line); }
header h1 { font-size:16px; margin:0; letter-spacing:.5px; }
.pill { padding:1px 8px; border-radius:10px; background:var(--line); color:var(--dim); font-size:12px; }
main { display:grid; grid-template-columns: 320px 1fr; gap:12px; padding:12px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; margin-bottom:12px; }
h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.6px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:500; }
tr.job { cursor:pointer; } tr.job td:first-child { max-width:150px; overflow:hidden; text-overflow:ellipsis; } tr.job:hover, tr.job.sel { background:#202633; }
.st-running { color:var(--reward); } .st-succeeded { color:var(--restart); } .st-failed { color:var(--death); }
.st-cancelled { color:var(--dim); } .st-queued { color:var(--val); }
textarea { width:100%; height:150px; background:#0b0e12; color:var(--text); border:1px solid var(--line); border-radius:4px; font:12px ui-monospace, monospace; }
button { background:#263042; color:var(--text); border:1px solid #3a4558; border-radius:4px; padding:4px 10px; cursor:pointer; }
button:hover { background:#2f3b52; } button.danger { border-color:#7a2d2d; }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
svg { width:100%; height:auto; display:block; }
.legend span { margin-right:12px; font-size:12px; } .legend i { display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; }
.err { color:var(--death); white-space:pre-wrap; }
.dim { color:var(--dim); }
#timeline-list { max-height:180px; overflow:auto; font:12px ui-monospace, monospace; margin-top:6px; }
#timeline-list div { padding:1px 0; }
.ok { color:var(--restart); } .bad { color:var(--death); }
`;

// The page's script. Plain DOM, no framework; every string from the server goes through textContent.
const SCRIPT = String.raw`
const CHAOS = __CHAOS__;
const S = { jobs: [], sel: null, view: null, steps: [], events: [], actors: [], ctrl: null, dirty: false, lastEventId: null };
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function token() { return sessionStorage.getItem("revenant-token") || (location.hash.match(/token=([^&]+)/) || [])[1] || ""; }
function headers(extra) { const h = Object.assign({}, extra); const t = token(); if (t) h.Authorization = "Bearer " + decodeURIComponent(t); return h; }
async function api(path, opts) {
  opts = opts || {};
  const res = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
  if (res.status === 401) { $("auth-form").hidden = false; throw new Error("unauthorized: enter the token"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error((body && body.error) ? body.error.message + (body.error.problems ? "\n" + body.error.problems.map((p) => "  " + p.path + ": " + p.message).join("\n") : "") : String(res.status));
  return body;
}
const fmt = (v, d) => (v === undefined || v === null || Number.isNaN(v)) ? "-" : Number(v).toFixed(d === undefined ? 3 : d);

async function refreshJobs() {
  try {
    const { jobs } = await api("/jobs");
    S.jobs = jobs;
    if (!S.sel && jobs.length) select((jobs.slice().reverse().find((j) => j.status === "running") || jobs[jobs.length - 1]).id);
    renderJobs();
  } catch (e) { $("jobs-error").textContent = e.message; }
}
function renderJobs() {
  const body = $("jobs-body"); body.replaceChildren();
  for (const j of S.jobs.slice().reverse()) {
    body.append(el("tr", { class: "job" + (j.id === S.sel ? " sel" : ""), "data-job": j.id, onclick: () => select(j.id) },
      el("td", {}, j.id.replace(/^[a-z_]+-/, "")), el("td", { class: "st-" + j.status }, j.status), el("td", {}, j.step + "/" + j.total_steps)));
  }
}
async function submitJob(ev) {
  ev.preventDefault();
  $("submit-error").textContent = "";
  try {
    const body = JSON.parse($("config").value || "{}");
    const { id } = await api("/jobs", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    await refreshJobs();
    select(id);
  } catch (e) { $("submit-error").textContent = e.message; }
}
async function cancelJob() {
  if (!S.sel) return;
  try { await api("/jobs/" + S.sel, { method: "DELETE" }); } catch (e) { $("job-error").textContent = e.message; }
}
async function killActor(actor) {
  try { await api("/jobs/" + S.sel + "/actors/" + encodeURIComponent(actor) + "/kill", { method: "POST", body: '{"signal":"SIGKILL"}', headers: { "Content-Type": "application/json" } }); }
  catch (e) { $("job-error").textContent = e.message; }
}

function select(id) {
  if (S.ctrl) S.ctrl.abort();
  Object.assign(S, { sel: id, view: null, steps: [], events: [], actors: [], ctrl: new AbortController(), lastEventId: null });
  renderJobs(); schedule();
  follow(id, S.ctrl.signal);
}
/**
 * Server-Sent Events over fetch (EventSource cannot send a bearer token). A dropped stream is
 * followed again from the last event seen (Last-Event-ID), so nothing is fetched twice.
 */
async function follow(id, signal) {
  try {
    const resume = S.lastEventId === null ? {} : { "Last-Event-ID": S.lastEventId };
    const res = await fetch("/jobs/" + id + "/events", { headers: headers(Object.assign({ Accept: "text/event-stream" }, resume)), signal });
    if (!res.ok) throw new Error("events: HTTP " + res.status);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
          else if (line.startsWith("id:")) S.lastEventId = line.slice(3).trim();
        }
        if (data) onEvent(event, JSON.parse(data));
      }
    }
  } catch (e) { if (!signal.aborted) $("job-error").textContent = e.message; }
  if (!signal.aborted && S.view && !["succeeded", "failed", "cancelled"].includes(S.view.status)) setTimeout(() => S.sel === id && !signal.aborted && follow(id, signal), 1000);
}
function onEvent(type, d) {
  if (type === "status" || type === "end") { S.view = d; if (d.actors.length) S.actors = d.actors; refreshJobs(); }
  else if (type === "step") { S.steps.push(Object.assign({ step: d.step }, d.metrics)); if (S.view) S.view.step = d.step; }
  else if (type === "actor") { if (d.step !== undefined) d.event.step = d.step; S.events.push(d.event); if (d.actors.length) S.actors = d.actors; }
  schedule();
}
function schedule() { if (!S.dirty) { S.dirty = true; requestAnimationFrame(render); } }

function chart(svgId, series, yLabel) {
  const svg = $(svgId); svg.replaceChildren();
  const W = 560, H = 220, L = 44, R = 10, T = 10, B = 24;
  const pts = series.map((s) => S.steps.filter((m) => m[s.key] !== undefined && Number.isFinite(m[s.key])).map((m) => [m.step, m[s.key]]));
  const all = pts.flat();
  svg.setAttribute("data-points", String(S.steps.length));
  const total = S.view ? S.view.total_steps : 1;
  let lo = Math.min(...all.map((p) => p[1]), 0), hi = Math.max(...all.map((p) => p[1]), 1e-9);
  if (!all.length) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) hi = lo + 1;
  const x = (s) => L + (W - L - R) * (s / Math.max(total, 1)), y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#2a303b" }));
    svg.append(el("svg:text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", fill: "#8b94a3", "font-size": 10 }, fmt(v, 2)));
  }
  svg.append(el("svg:text", { x: W - R, y: H - 6, "text-anchor": "end", fill: "#8b94a3", "font-size": 10 }, "step (of " + total + ")"));
  svg.append(el("svg:text", { x: L, y: H - 6, fill: "#8b94a3", "font-size": 10 }, yLabel));
  for (const e of S.events) if (e.type === "death" && e.step !== undefined) svg.append(el("svg:line", { x1: x(e.step), x2: x(e.step), y1: T, y2: H - B, stroke: "#ef5350", "stroke-dasharray": "3 3" }));
  series.forEach((s, i) => {
    if (!pts[i].length) return;
    svg.append(el("svg:polyline", { fill: "none", stroke: s.color, "stroke-width": 1.6, points: pts[i].map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "), "data-series": s.key }));
  });
}
const KIND_COLOR = { death: "#ef5350", restart: "#66bb6a", retry: "#ffa726", failed: "#e040fb", health: "#42a5f5", stopped: "#8b94a3" };
function timeline() {
  const svg = $("timeline"); svg.replaceChildren();
  const W = 1140, H = 46;
  const evs = S.events.filter((e) => e.type !== "stopped");
  svg.setAttribute("data-events", String(evs.length));
  const start = S.view && S.view.started_at ? Date.parse(S.view.started_at) : (evs[0] ? evs[0].ts : Date.now());
  const end = S.view && S.view.finished_at ? Date.parse(S.view.finished_at) : Date.now();
  const span = Math.max(end - start, 1000);
  svg.append(el("svg:line", { x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: "#2a303b" }));
  const rows = { death: 12, failed: 12, restart: 24, retry: 34, health: 40 };
  for (const e of evs) {
    const cx = Math.min(W - 4, Math.max(4, (e.ts - start) / span * W));
    svg.append(el("svg:circle", { cx, cy: rows[e.type] || 23, r: 4, fill: KIND_COLOR[e.type] || "#fff", "data-kind": e.type }, el("svg:title", {}, e.type + " " + e.actor)));
  }
  const list = $("timeline-list"); list.replaceChildren();
  for (const e of evs.slice(-200).reverse()) {
    const what = e.type === "death" ? (e.cause || "") + (e.signal ? " " + e.signal : "") + (e.detail ? " — " + e.detail : "")
      : e.type === "restart" ? "incarnation " + e.incarnation + " in " + e.latency_ms + " ms"
      : e.type === "retry" ? e.method + " attempt " + e.attempt : e.type === "health" ? (e.healthy ? "healthy" : "unhealthy") : (e.reason || "");
    list.append(el("div", { class: "ev-" + e.type }, el("span", { class: "dim" }, new Date(e.ts).toLocaleTimeString() + " "),
      el("b", { style: "color:" + (KIND_COLOR[e.type] || "#fff") }, e.type), " " + e.actor + " " + what));
  }
}
function actorsTable() {
  const body = $("actors-body"); body.replaceChildren();
  for (const a of S.actors) {
    const health = a.health === null ? "-" : a.health === 1 ? "healthy" : "unhealthy";
    const running = S.view && S.view.status === "running";
    body.append(el("tr", { "data-actor": a.id },
      el("td", {}, a.id), el("td", {}, a.role), el("td", {}, a.rank), el("td", {}, a.state), el("td", {}, a.incarnation),
      el("td", {}, a.pid ?? "-"), el("td", { class: a.health === 0 ? "bad" : a.health === 1 ? "ok" : "" }, health),
      el("td", { class: "restarts" }, a.restarts), el("td", {}, a.failures),
      el("td", {}, CHAOS && running ? el("button", { class: "danger", onclick: () => killActor(a.id) }, "kill") : "")));
  }
}
function render() {
  S.dirty = false;
  const v = S.view;
  $("job-title").textContent = v ? v.id : "no job selected";
  $("job-status").textContent = v ? v.status + (v.cancel_requested && v.status === "running" ? " (cancelling)" : "") : "";
  $("job-status").className = "pill st-" + (v ? v.status : "");
  const last = S.steps[S.steps.length - 1] || {};
  $("job-facts").textContent = v ? "step " + v.step + "/" + v.total_steps + " · reward " + fmt(last["critic/score/mean"]) +
    " · pg_loss " + fmt(last["actor/pg_loss"]) + " · " + fmt(last["perf/throughput"], 0) + " tok/s · runs " + v.runs : "";
  $("job-error").textContent = v && v.error ? v.error : "";
  $("cancel").hidden = !v || !["queued", "running"].includes(v.status);
  chart("reward-chart", [{ key: "critic/score/mean", color: "#4fc3f7" }, { key: "val/score", color: "#ffd54f" }], "reward");
  chart("loss-chart", [{ key: "actor/pg_loss", color: "#f48fb1" }, { key: "critic/vf_loss", color: "#aed581" }], "loss");
  actorsTable();
  timeline();
}
$("submit").addEventListener("submit", submitJob);
$("cancel").addEventListener("click", cancelJob);
$("auth-form").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("revenant-token", $("token").value); $("auth-form").hidden = true; refreshJobs(); });
$("chaos").textContent = CHAOS ? "chaos enabled" : "chaos off";
refreshJobs();
setInterval(refreshJobs, 3000);
`;

/** The dashboard page. */
export function dashboardHtml(o: DashboardOptions): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Revenant dashboard</title><style>${CSS}</style></head>
<body>
<header><h1>REVENANT</h1><span class="pill">coordinator</span><span class="pill" id="chaos"></span>
<form id="auth-form" hidden><input id="token" type="password" placeholder="REVENANT_TOKEN"> <button>use token</button></form></header>
<main>
<div>
  <section><h2>Jobs</h2><table><thead><tr><th>job</th><th>status</th><th>step</th></tr></thead><tbody id="jobs-body"></tbody></table>
  <div class="err" id="jobs-error"></div></section>
  <section><h2>Submit a job</h2><form id="submit"><textarea id="config" spellcheck="false">${JSON.stringify(DEFAULT_JOB, null, 1)}</textarea>
  <button id="submit-button" type="submit">submit</button></form><div class="err" id="submit-error"></div>
  <p class="dim">A partial configuration (see /openapi.json); the rest comes from the defaults.</p></section>
</div>
<div>
  <section><h2><span id="job-title">no job selected</span> <span id="job-status" class="pill"></span> <button id="cancel" hidden>cancel</button></h2>
  <div id="job-facts" class="dim"></div><div class="err" id="job-error"></div></section>
  <div class="charts">
    <section><h2>Reward</h2><div class="legend"><span><i style="background:#4fc3f7"></i>critic/score/mean</span><span><i style="background:#ffd54f"></i>val/score</span></div>
      <svg id="reward-chart" viewBox="0 0 560 220" role="img" aria-label="reward per step"></svg></section>
    <section><h2>Loss</h2><div class="legend"><span><i style="background:#f48fb1"></i>actor/pg_loss</span><span><i style="background:#aed581"></i>critic/vf_loss</span></div>
      <svg id="loss-chart" viewBox="0 0 560 220" role="img" aria-label="loss per step"></svg></section>
  </div>
  <section><h2>Actors</h2><table><thead><tr><th>actor</th><th>role</th><th>rank</th><th>state</th><th>incarnation</th><th>pid</th><th>health</th><th>restarts</th><th>failures</th><th></th></tr></thead>
  <tbody id="actors-body"></tbody></table></section>
  <section><h2>Failures and restarts</h2>
  <div class="legend"><span><i style="background:#ef5350"></i>death</span><span><i style="background:#66bb6a"></i>restart</span><span><i style="background:#ffa726"></i>retry</span><span><i style="background:#e040fb"></i>failed</span><span><i style="background:#42a5f5"></i>health</span></div>
  <svg id="timeline" viewBox="0 0 1140 46" role="img" aria-label="failure and restart timeline"></svg><div id="timeline-list"></div></section>
</div>
</main>
<script>${SCRIPT.replace("__CHAOS__", JSON.stringify(o.chaos))}</script>
</body></html>`;
}
