/**
 * The dashboard served at `GET /`: one self-contained HTML page (inline CSS and JS, no CDN, no
 * build step). It lists the jobs (full ids, status, step, latest validation score), submits new
 * ones, and for the selected job follows `GET /jobs/:id/events` (SSE read through fetch, so a
 * bearer token can be sent) to draw live charts (inline SVG, step ticks, a tooltip with the step
 * and value under the pointer) of the reward, the validation score, the policy entropy and the
 * KL to the reference, the actor table (state, health, restarts; a stopped actor reads
 * "stopped") and the failure/restart timeline. With chaos enabled each actor row of a running
 * job has a kill button.
 *
 * Runs that a `bun run train` wrote into the same run dir (GET /external-runs, see
 * external_runs.ts) are listed too, marked "cli", read-only: their charts come from their
 * metrics history; they have no actor table, events or controls here.
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

/** The charts: one metric each, its own y scale. */
const CHARTS = [
  { id: "reward-chart", key: "critic/score/mean", title: "Reward", color: "#4fc3f7", zero: true },
  { id: "val-chart", key: "val/score", title: "Validation score", color: "#ffd54f", zero: true, dots: true },
  { id: "entropy-chart", key: "actor/entropy", title: "Entropy", color: "#ce93d8", zero: false },
  { id: "kl-chart", key: "actor/ppo_kl", title: "KL to the rollout policy (ppo_kl)", color: "#aed581", zero: true },
];

const CSS = `
:root { --bg:#0f1217; --panel:#171b22; --line:#2a303b; --text:#d8dee9; --dim:#8b94a3; --reward:#4fc3f7; --val:#ffd54f;
  --death:#ef5350; --restart:#66bb6a; --retry:#ffa726; --failed:#e040fb; --health:#42a5f5; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; gap:12px; align-items:center; padding:10px 16px; border-bottom:1px solid var(--line); }
header h1 { font-size:16px; margin:0; letter-spacing:.5px; }
.pill { padding:1px 8px; border-radius:10px; background:var(--line); color:var(--dim); font-size:12px; }
main { display:grid; grid-template-columns: 530px 1fr; gap:12px; padding:12px; }
section { position:relative; background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; margin-bottom:12px; }
h2 { font-size:13px; margin:0 0 8px; color:var(--dim); text-transform:uppercase; letter-spacing:.6px; }
#job-title { font:600 13px ui-monospace, SFMono-Regular, Menlo, monospace; text-transform:none; letter-spacing:0; color:var(--text); }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:500; }
tr.job { cursor:pointer; } tr.job:hover, tr.job.sel { background:#202633; }
td.id { font:11.5px ui-monospace, SFMono-Regular, Menlo, monospace; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.ext { display:inline-block; margin-left:4px; padding:0 5px; border-radius:8px; border:1px solid #3a4558; color:var(--dim); font-size:10.5px; }
.st-running { color:var(--reward); } .st-succeeded { color:var(--restart); } .st-failed { color:var(--death); }
.st-cancelled, .st-stopped { color:var(--dim); } .st-queued { color:var(--val); }
textarea { width:100%; height:150px; background:#0b0e12; color:var(--text); border:1px solid var(--line); border-radius:4px; font:12px ui-monospace, monospace; }
button { background:#263042; color:var(--text); border:1px solid #3a4558; border-radius:4px; padding:4px 10px; cursor:pointer; }
button:hover { background:#2f3b52; } button.danger { border-color:#7a2d2d; }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:0 12px; }
svg { width:100%; height:auto; display:block; }
svg.chart { cursor:crosshair; }
.legend span { margin-right:12px; font-size:12px; } .legend i { display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; }
.latest { float:right; font:12px ui-monospace, monospace; color:var(--text); text-transform:none; letter-spacing:0; }
.tip { position:absolute; pointer-events:none; background:#0b0e12; border:1px solid #3a4558; border-radius:4px; padding:3px 7px;
  font:12px ui-monospace, monospace; white-space:pre; z-index:2; box-shadow:0 2px 8px #0008; }
.err { color:var(--death); white-space:pre-wrap; }
.dim { color:var(--dim); }
#timeline-list { max-height:180px; overflow:auto; font:12px ui-monospace, monospace; margin-top:6px; }
#timeline-list div { padding:1px 0; }
.ok { color:var(--restart); } .bad { color:var(--death); }
.state-alive { color:var(--restart); } .state-dead, .state-failed { color:var(--death); } .state-restarting, .state-restoring, .state-starting { color:var(--retry); }
.state-stopped, .state-stopping { color:var(--dim); } tr.actor-stopped td { color:var(--dim); }
`;

// The page's script. Plain DOM, no framework; every string from the server goes through textContent.
const SCRIPT = String.raw`
const CHAOS = __CHAOS__;
const CHARTS = __CHARTS__;
const FINISHED = ["succeeded", "failed", "cancelled"];
const S = { jobs: [], ext: [], sel: null, external: false, view: null, steps: [], events: [], actors: [], ctrl: null, dirty: false,
  lastEventId: null, vals: {}, hover: {} };
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
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const fmt = (v, d) => !isNum(v) ? "-" : Number(v).toFixed(d === undefined ? 3 : d);
/** A compact number for ticks and tooltips: 4 significant digits, exponent form when tiny or huge. */
function short(v) {
  if (!isNum(v)) return "-";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** The latest val/score known for a job or run. */
function valOf(j) {
  if (j.id === S.sel) { const m = S.steps.findLast((m) => isNum(m["val/score"])); if (m) return m["val/score"]; }
  if (j.external) return j.val_score;
  if (j.metrics && isNum(j.metrics["val/score"])) return j.metrics["val/score"];
  if (isNum(S.vals[j.id])) return S.vals[j.id];
  return j.result ? j.result.finalValScore : null;
}
function lastVal() { const m = S.steps.findLast((m) => isNum(m["val/score"])); return m ? m : null; }

async function refreshJobs() {
  try {
    const [{ jobs }, ext] = await Promise.all([api("/jobs"), api("/external-runs").catch(() => ({ runs: [] }))]);
    S.jobs = jobs; S.ext = ext.runs || [];
    for (const j of jobs) if (j.metrics && isNum(j.metrics["val/score"])) S.vals[j.id] = j.metrics["val/score"];
    $("jobs-error").textContent = "";
    if (!S.sel) {
      const pick = jobs.slice().reverse().find((j) => j.status === "running") || jobs[jobs.length - 1];
      if (pick) select(pick.id, false); else if (S.ext.length) select(S.ext[S.ext.length - 1].id, true);
    } else if (S.external) {
      const run = S.ext.find((r) => r.id === S.sel);
      if (run) { const was = S.view && S.view.status; S.view = extView(run); if (run.status === "running" || was === "running") loadExternal(S.sel); }
    }
    renderJobs(); schedule();
  } catch (e) { $("jobs-error").textContent = e.message; }
}
function renderJobs() {
  const body = $("jobs-body"); body.replaceChildren();
  const row = (j, external) => el("tr", { class: "job" + (j.id === S.sel ? " sel" : ""), "data-job": j.id, "data-external": external ? "true" : null,
      onclick: () => select(j.id, external) },
    el("td", { class: "id", title: j.id }, j.id),
    el("td", { class: "status st-" + j.status }, j.status, external ? el("span", { class: "ext", title: "written by bun run train in this run dir; read-only" }, "cli") : ""),
    el("td", { class: "num" }, j.step + "/" + (j.total_steps ?? "?")),
    el("td", { class: "num val" }, fmt(valOf(j))));
  for (const j of S.jobs.slice().reverse()) body.append(row(j, false));
  for (const r of S.ext.slice().reverse()) body.append(row(r, true));
}
async function submitJob(ev) {
  ev.preventDefault();
  $("submit-error").textContent = "";
  try {
    const body = JSON.parse($("config").value || "{}");
    const { id } = await api("/jobs", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    await refreshJobs();
    select(id, false);
  } catch (e) { $("submit-error").textContent = e.message; }
}
async function cancelJob() {
  if (!S.sel || S.external) return;
  try { await api("/jobs/" + S.sel, { method: "DELETE" }); } catch (e) { $("job-error").textContent = e.message; }
}
async function killActor(actor) {
  try { await api("/jobs/" + S.sel + "/actors/" + encodeURIComponent(actor) + "/kill", { method: "POST", body: '{"signal":"SIGKILL"}', headers: { "Content-Type": "application/json" } }); }
  catch (e) { $("job-error").textContent = e.message; }
}

function extView(r) { return { id: r.id, status: r.status, external: true, total_steps: r.total_steps ?? r.step, step: r.step, runs: null, error: null }; }
function select(id, external) {
  if (S.ctrl) S.ctrl.abort();
  Object.assign(S, { sel: id, external: Boolean(external), view: null, steps: [], events: [], actors: [], ctrl: new AbortController(), lastEventId: null, hover: {} });
  for (const c of CHARTS) $(c.id + "-tip").hidden = true;
  if (external) {
    const run = S.ext.find((r) => r.id === id);
    if (run) S.view = extView(run);
    loadExternal(id);
  } else follow(id, S.ctrl.signal);
  renderJobs(); schedule();
}
/** An external run's history: polled (from the last step held) while it runs; it has no event stream. */
async function loadExternal(id) {
  try {
    const since = S.steps.length ? S.steps[S.steps.length - 1].step : 0;
    const { steps } = await api("/external-runs/" + encodeURIComponent(id) + "/metrics?since=" + since);
    if (S.sel !== id || !S.external) return;
    for (const m of steps) if (!S.steps.length || m.step > S.steps[S.steps.length - 1].step) S.steps.push(m);
    if (S.view && S.steps.length) S.view.step = S.steps[S.steps.length - 1].step;
    schedule();
  } catch (e) { if (S.sel === id) $("job-error").textContent = e.message; }
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
  if (!signal.aborted && S.view && !FINISHED.includes(S.view.status)) setTimeout(() => S.sel === id && !signal.aborted && follow(id, signal), 1000);
}
function onEvent(type, d) {
  if (type === "status" || type === "end") { S.view = d; if (d.actors.length) S.actors = d.actors; refreshJobs(); }
  else if (type === "step") { S.steps.push(Object.assign({ step: d.step }, d.metrics)); if (S.view) S.view.step = d.step; }
  else if (type === "actor") { if (d.step !== undefined) d.event.step = d.step; S.events.push(d.event); if (d.actors.length) S.actors = d.actors; }
  schedule();
}
function schedule() { if (!S.dirty) { S.dirty = true; requestAnimationFrame(render); } }

const W = 440, H = 210, L = 44, R = 10, T = 10, B = 30;
/** 1, 2 or 5 × 10^k: the smallest such interval giving at most n ticks over span. */
function nice(span, n) {
  const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw * (1 - 1e-9));
}
const tickStep = (total) => Math.max(1, nice(Math.max(total, 1), 6));
/** A y tick label: as many decimals as the tick interval needs. */
function tickLabel(v, every) {
  if (Math.abs(v) < every / 2) return "0";
  if (every < 1e-3 || Math.abs(v) >= 1e6) return v.toExponential(1);
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(every) + 1e-9)));
}
function geometry(spec) {
  const pts = S.steps.filter((m) => isNum(m[spec.key]) && isNum(m.step)).map((m) => [m.step, m[spec.key]]);
  const lastStep = pts.length ? pts[pts.length - 1][0] : 0;
  const total = Math.max(S.view && isNum(S.view.total_steps) ? S.view.total_steps : 0, lastStep, 1);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (!pts.length) { lo = 0; hi = 1; }
  if (spec.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  if (hi - lo < 1e-12) { const d = Math.abs(hi) * 0.1 || 1; lo -= spec.zero && lo >= 0 ? 0 : d; hi += d; }
  // The y range widened to whole tick intervals, so every grid line has a round value.
  const every = nice(hi - lo, 4);
  lo = Math.floor(lo / every + 1e-9) * every; hi = Math.ceil(hi / every - 1e-9) * every;
  const x = (s) => L + (W - L - R) * (s / total), y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  return { pts, total, lo, hi, every, x, y };
}
function chart(spec) {
  const svg = $(spec.id); svg.replaceChildren();
  const g = geometry(spec), { pts, total, lo, hi, x, y } = g;
  svg.setAttribute("data-points", String(pts.length));
  for (let i = 0, n = Math.round((hi - lo) / g.every); i <= n; i++) {
    const v = lo + i * g.every;
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#2a303b" }));
    svg.append(el("svg:text", { x: L - 5, y: y(v) + 3.5, "text-anchor": "end", fill: "#8b94a3", "font-size": 10 }, tickLabel(v, g.every)));
  }
  const every = tickStep(total);
  for (let s = 0; s <= total; s += every) {
    svg.append(el("svg:line", { x1: x(s), x2: x(s), y1: H - B, y2: H - B + 4, stroke: "#8b94a3", class: "x-tick" }));
    svg.append(el("svg:text", { x: x(s), y: H - B + 15, "text-anchor": "middle", fill: "#8b94a3", "font-size": 10, class: "x-tick-label" }, s));
  }
  svg.append(el("svg:line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#3a4558" }));
  svg.append(el("svg:text", { x: W - R, y: H - 3, "text-anchor": "end", fill: "#8b94a3", "font-size": 10 }, "step"));
  for (const e of S.events) if (e.type === "death" && e.step !== undefined) svg.append(el("svg:line", { x1: x(e.step), x2: x(e.step), y1: T, y2: H - B, stroke: "#ef5350", "stroke-dasharray": "3 3" }));
  if (pts.length) {
    svg.append(el("svg:polyline", { fill: "none", stroke: spec.color, "stroke-width": 1.6, "stroke-linejoin": "round",
      points: pts.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" "), "data-series": spec.key }));
    if (spec.dots || pts.length === 1) for (const p of pts) svg.append(el("svg:circle", { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: spec.color }));
  }
  const last = pts[pts.length - 1];
  $(spec.id + "-latest").textContent = last ? short(last[1]) + " @ " + last[0] : "";
  if (S.hover[spec.id] !== undefined) hover(spec, S.hover[spec.id], g);
}
/** The guide line, the point and the tooltip for the point nearest to viewBox x vx. */
function hover(spec, vx, g) {
  g = g || geometry(spec);
  const svg = $(spec.id), tip = $(spec.id + "-tip");
  svg.querySelector(".hover")?.remove();
  if (!g.pts.length) { tip.hidden = true; return; }
  let best = g.pts[0];
  for (const p of g.pts) if (Math.abs(g.x(p[0]) - vx) < Math.abs(g.x(best[0]) - vx)) best = p;
  const px = g.x(best[0]), py = g.y(best[1]);
  svg.append(el("svg:g", { class: "hover" },
    el("svg:line", { x1: px, x2: px, y1: T, y2: H - B, stroke: "#8b94a3", "stroke-dasharray": "2 3" }),
    el("svg:circle", { cx: px, cy: py, r: 4, fill: spec.color, stroke: "#0f1217", "stroke-width": 1.5 })));
  tip.textContent = "step " + best[0] + "\n" + spec.key + " " + short(best[1]);
  tip.hidden = false;
  const box = svg.getBoundingClientRect(), host = svg.parentElement.getBoundingClientRect(), k = box.width / W;
  const left = box.left - host.left + px * k, top = box.top - host.top + py * k;
  tip.style.left = (px > W * 0.62 ? left - tip.offsetWidth - 10 : left + 10) + "px";
  tip.style.top = Math.max(0, top - tip.offsetHeight - 8) + "px";
}
for (const spec of CHARTS) {
  const svg = $(spec.id);
  const at = (ev) => { const box = svg.getBoundingClientRect(); return (ev.clientX - box.left) * W / box.width; };
  svg.addEventListener("mousemove", (ev) => { S.hover[spec.id] = at(ev); hover(spec, S.hover[spec.id]); });
  svg.addEventListener("mouseleave", () => { delete S.hover[spec.id]; svg.querySelector(".hover")?.remove(); $(spec.id + "-tip").hidden = true; });
}

const KIND_COLOR = { death: "#ef5350", restart: "#66bb6a", retry: "#ffa726", failed: "#e040fb", health: "#42a5f5", stopped: "#8b94a3" };
function timeline() {
  const svg = $("timeline"); svg.replaceChildren();
  const TW = 1140, TH = 46;
  const evs = S.events.filter((e) => e.type !== "stopped");
  svg.setAttribute("data-events", String(evs.length));
  const start = S.view && S.view.started_at ? Date.parse(S.view.started_at) : (evs[0] ? evs[0].ts : Date.now());
  const end = S.view && S.view.finished_at ? Date.parse(S.view.finished_at) : Date.now();
  const span = Math.max(end - start, 1000);
  svg.append(el("svg:line", { x1: 0, x2: TW, y1: TH / 2, y2: TH / 2, stroke: "#2a303b" }));
  const rows = { death: 12, failed: 12, restart: 24, retry: 34, health: 40 };
  for (const e of evs) {
    const cx = Math.min(TW - 4, Math.max(4, (e.ts - start) / span * TW));
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
/** Live processes have a health; for a stopped, failed or dead actor the last probe no longer says anything. */
const LIVE_STATES = ["starting", "alive", "restoring"];
function actorsTable() {
  const body = $("actors-body"); body.replaceChildren();
  const running = S.view && S.view.status === "running" && !S.external;
  for (const a of S.actors) {
    const live = LIVE_STATES.includes(a.state);
    const health = !live || a.health === null ? "-" : a.health === 1 ? "healthy" : "unhealthy";
    body.append(el("tr", { "data-actor": a.id, class: "actor-" + a.state },
      el("td", {}, a.id), el("td", {}, a.role), el("td", {}, a.rank), el("td", { class: "state state-" + a.state }, a.state), el("td", {}, a.incarnation),
      el("td", {}, a.pid ?? "-"), el("td", { class: "health " + (!live ? "" : a.health === 0 ? "bad" : a.health === 1 ? "ok" : "") }, health),
      el("td", { class: "restarts" }, a.restarts), el("td", {}, a.failures),
      el("td", {}, CHAOS && running && a.state === "alive" ? el("button", { class: "danger", onclick: () => killActor(a.id) }, "kill") : "")));
  }
  $("actors-note").textContent = S.external ? "A read-only run written by bun run train into this run dir: its actors belong to that process (none shown)."
    : !S.actors.length && S.view ? "no actors yet" : "";
}
function render() {
  S.dirty = false;
  const v = S.view;
  $("job-title").textContent = v ? v.id : (S.sel || "no job selected");
  $("job-status").textContent = v ? v.status + (v.cancel_requested && v.status === "running" ? " (cancelling)" : "") + (v.external ? " · cli run (read-only)" : "") : "";
  $("job-status").className = "pill st-" + (v ? v.status : "");
  const last = S.steps[S.steps.length - 1] || {}, val = lastVal();
  const valText = val ? fmt(val["val/score"]) + " (step " + val.step + ")" : v && !v.external && v.result ? fmt(v.result.finalValScore) : "-";
  $("job-facts").textContent = v ? "step " + v.step + "/" + (v.total_steps ?? "?") + " · reward " + fmt(last["critic/score/mean"]) +
    " · val score " + valText + " · entropy " + short(last["actor/entropy"]) + " · kl " + short(last["actor/ppo_kl"]) +
    " · " + fmt(last["perf/throughput"], 0) + " tok/s" + (v.external ? "" : " · runs " + v.runs) : "";
  $("job-error").textContent = v && v.error ? v.error : "";
  $("cancel").hidden = !v || v.external || !["queued", "running"].includes(v.status);
  for (const spec of CHARTS) chart(spec);
  actorsTable();
  timeline();
  const cell = document.querySelector("#jobs-body tr.sel td.val");
  const j = S.jobs.find((j) => j.id === S.sel) || S.ext.find((r) => r.id === S.sel);
  if (cell && j) cell.textContent = fmt(valOf(j));
}
$("submit").addEventListener("submit", submitJob);
$("cancel").addEventListener("click", cancelJob);
$("auth-form").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("revenant-token", $("token").value); $("auth-form").hidden = true; refreshJobs(); });
$("chaos").textContent = CHAOS ? "chaos enabled" : "chaos off";
refreshJobs();
setInterval(refreshJobs, 3000);
`;

const chartSection = (c: (typeof CHARTS)[number]) =>
  `<section><h2>${c.title} <span class="latest" id="${c.id}-latest"></span></h2><div class="legend"><span><i style="background:${c.color}"></i>${c.key}</span></div>
      <svg id="${c.id}" class="chart" viewBox="0 0 440 210" role="img" aria-label="${c.key} per step"></svg><div class="tip" id="${c.id}-tip" hidden></div></section>`;

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
  <section><h2>Jobs</h2><table><thead><tr><th>job</th><th>status</th><th class="num">step</th><th class="num">val</th></tr></thead><tbody id="jobs-body"></tbody></table>
  <div class="err" id="jobs-error"></div></section>
  <section><h2>Submit a job</h2><form id="submit"><textarea id="config" spellcheck="false">${JSON.stringify(DEFAULT_JOB, null, 1)}</textarea>
  <button id="submit-button" type="submit">submit</button></form><div class="err" id="submit-error"></div>
  <p class="dim">A partial configuration (see /openapi.json); the rest comes from the defaults.</p></section>
</div>
<div>
  <section><h2><span id="job-title">no job selected</span> <span id="job-status" class="pill"></span> <button id="cancel" hidden>cancel</button></h2>
  <div id="job-facts" class="dim"></div><div class="err" id="job-error"></div></section>
  <div class="charts">
    ${CHARTS.map(chartSection).join("\n    ")}
  </div>
  <section><h2>Actors</h2><table><thead><tr><th>actor</th><th>role</th><th>rank</th><th>state</th><th>incarnation</th><th>pid</th><th>health</th><th>restarts</th><th>failures</th><th></th></tr></thead>
  <tbody id="actors-body"></tbody></table><div id="actors-note" class="dim"></div></section>
  <section><h2>Failures and restarts</h2>
  <div class="legend"><span><i style="background:#ef5350"></i>death</span><span><i style="background:#66bb6a"></i>restart</span><span><i style="background:#ffa726"></i>retry</span><span><i style="background:#e040fb"></i>failed</span><span><i style="background:#42a5f5"></i>health</span></div>
  <svg id="timeline" viewBox="0 0 1140 46" role="img" aria-label="failure and restart timeline"></svg><div id="timeline-list"></div></section>
</div>
</main>
<script>${SCRIPT.replace("__CHAOS__", JSON.stringify(o.chaos)).replace("__CHARTS__", JSON.stringify(CHARTS))}</script>
</body></html>`;
}
