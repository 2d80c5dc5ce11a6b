// @ts-check
/**
 * The dashboard page's script: dashboard.ts inlines it, and it reads its `DashboardConfig` from
 * the page's `#dashboard-config` JSON. Plain DOM, no framework; every string from the server goes
 * through textContent. A classic script in plain JavaScript typed by JSDoc: the page runs it as it
 * is, with no build step on Bun or Deno, and `bun run typecheck` checks it (tsconfig.dashboard.json,
 * with the DOM types the server's own project does not have).
 */

/**
 * @typedef {import("./dashboard_types.ts").DashboardConfig} DashboardConfig
 * @typedef {import("./dashboard_types.ts").DashboardChart} Chart
 * @typedef {import("./dashboard_types.ts").DashboardJob} Job
 * @typedef {import("./dashboard_types.ts").DashboardRun} Run
 * @typedef {import("./dashboard_types.ts").DashboardActor} Actor
 * @typedef {import("./dashboard_types.ts").DashboardEvent} ActorEvent
 * @typedef {{ step: number; [key: string]: number }} StepMetrics one step's metrics, `step` included
 * @typedef {Job | Run} Row a line of the jobs table
 * @typedef {{ id: string; status: string; external?: boolean; total_steps: number | null; step: number; runs: number | null;
 *   error: string | null; cancel_requested?: boolean; result?: Job["result"]; started_at?: string | null;
 *   finished_at?: string | null }} View the selected job, or a CLI run shown the same way
 * @typedef {{ jobs: Job[]; ext: Run[]; sel: string | null; external: boolean; view: View | null; steps: StepMetrics[];
 *   events: ActorEvent[]; actors: Actor[]; ctrl: AbortController | null; dirty: boolean; lastEventId: string | null;
 *   vals: Record<string, number>; hover: Record<string, number> }} State
 * @typedef {string | number | boolean | null | undefined | ((ev: Event) => void)} AttrValue
 * @typedef {{ pts: [number, number][]; total: number; lo: number; hi: number; every: number; x: (s: number) => number;
 *   y: (v: number) => number }} Geometry a chart's points and scales
 */

/**
 * The element with this id, checked to be of this type: the markup and this script are one
 * program, so a missing or different element is a bug, said at once.
 * @template {Element} E
 * @param {string} id
 * @param {{ new (): E; prototype: E }} type
 * @returns {E}
 */
function byId(id, type) {
  const e = document.getElementById(id);
  if (!(e instanceof type)) throw new Error("dashboard: no #" + id + " of the expected type");
  return e;
}
/** @param {string} id */
const $ = (id) => byId(id, HTMLElement);
/** @param {string} id */
const svgById = (id) => byId(id, SVGSVGElement);

/** @type {DashboardConfig} */
const CONFIG = JSON.parse(byId("dashboard-config", HTMLScriptElement).textContent || "{}");
const CHAOS = CONFIG.chaos;
const CHARTS = CONFIG.charts;
const FINISHED = ["succeeded", "failed", "cancelled"];
/** @type {State} */
const S = { jobs: [], ext: [], sel: null, external: false, view: null, steps: [], events: [], actors: [], ctrl: null, dirty: false,
  lastEventId: null, vals: {}, hover: {} };
const NS = "http://www.w3.org/2000/svg";
/**
 * An element ("svg:" names an SVG one): `on*` attributes are listeners, null and undefined ones are left out.
 * @param {string} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {...(Node | string | number)} kids
 * @returns {Element}
 */
function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v); else if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
/** @param {unknown} e */
const messageOf = (e) => e instanceof Error ? e.message : String(e);
function token() { return sessionStorage.getItem("revenant-token") || (location.hash.match(/token=([^&]+)/) || [])[1] || ""; }
/**
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
function headers(extra) { const h = Object.assign({}, extra); const t = token(); if (t) h.Authorization = "Bearer " + decodeURIComponent(t); return h; }
/**
 * The error body's message, its problems one a line; the HTTP status when the body has none.
 * @param {unknown} body
 * @param {number} status
 */
function errorText(body, status) {
  /** @typedef {{ error?: { message: string; problems?: { path: string; message: string }[] } }} ErrorBody the API's error shape */
  const error = body && typeof body === "object" ? /** @type {ErrorBody} */ (body).error : undefined;
  if (!error) return String(status);
  return error.message + (error.problems ? "\n" + error.problems.map((p) => "  " + p.path + ": " + p.message).join("\n") : "");
}
/**
 * A request with the token; the answer's JSON (or text), of the type the caller expects of that route.
 * @template T
 * @param {string} path
 * @param {RequestInit & { headers?: Record<string, string> }} [opts]
 * @returns {Promise<T>}
 */
async function api(path, opts) {
  opts = opts || {};
  const res = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
  if (res.status === 401) { $("auth-form").hidden = false; throw new Error("unauthorized: enter the token"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(errorText(body, res.status));
  return body;
}
/**
 * @param {unknown} v
 * @returns {v is number}
 */
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
/**
 * @param {unknown} v
 * @param {number} [d]
 */
const fmt = (v, d) => !isNum(v) ? "-" : Number(v).toFixed(d === undefined ? 3 : d);
/**
 * A compact number for ticks and tooltips: 4 significant digits, exponent form when tiny or huge.
 * @param {unknown} v
 */
function short(v) {
  if (!isNum(v)) return "-";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/**
 * The latest val/score known for a job or run.
 * @param {Row} j
 */
function valOf(j) {
  if (j.id === S.sel) { const m = lastVal(); if (m) return m["val/score"]; }
  if (j.external) return j.val_score;
  if (j.metrics && isNum(j.metrics["val/score"])) return j.metrics["val/score"];
  if (isNum(S.vals[j.id])) return S.vals[j.id];
  return j.result ? j.result.finalValScore : null;
}
/** The latest step with a val/score, or null. */
function lastVal() { const m = S.steps.findLast((m) => isNum(m["val/score"])); return m ? m : null; }

async function refreshJobs() {
  try {
    /** @type {[{ jobs: Job[] }, { runs?: Run[] }]} */
    const [{ jobs }, ext] = await Promise.all([api("/jobs"), api("/external-runs").catch(() => ({ runs: [] }))]);
    S.jobs = jobs; S.ext = ext.runs || [];
    for (const j of jobs) if (j.metrics && isNum(j.metrics["val/score"])) S.vals[j.id] = j.metrics["val/score"];
    $("jobs-error").textContent = "";
    if (!S.sel) {
      const pick = jobs.slice().reverse().find((j) => j.status === "running") || jobs[jobs.length - 1];
      const run = S.ext[S.ext.length - 1];
      if (pick) select(pick.id, false); else if (run) select(run.id, true);
    } else if (S.external) {
      const run = S.ext.find((r) => r.id === S.sel);
      if (run) { const was = S.view && S.view.status; S.view = extView(run); if (run.status === "running" || was === "running") loadExternal(S.sel); }
    }
    renderJobs(); schedule();
  } catch (e) { $("jobs-error").textContent = messageOf(e); }
}
function renderJobs() {
  const body = $("jobs-body"); body.replaceChildren();
  /**
   * @param {Row} j
   * @param {boolean} external
   */
  const row = (j, external) => el("tr", { class: "job" + (j.id === S.sel ? " sel" : ""), "data-job": j.id, "data-external": external ? "true" : null,
      onclick: () => select(j.id, external) },
    el("td", { class: "id", title: j.id }, j.id),
    el("td", { class: "status st-" + j.status }, j.status, external ? el("span", { class: "ext", title: "written by bun run train in this run dir; read-only" }, "cli") : ""),
    el("td", { class: "num" }, j.step + "/" + (j.total_steps ?? "?")),
    el("td", { class: "num val" }, fmt(valOf(j))));
  for (const j of S.jobs.slice().reverse()) body.append(row(j, false));
  for (const r of S.ext.slice().reverse()) body.append(row(r, true));
}
/** @param {Event} ev */
async function submitJob(ev) {
  ev.preventDefault();
  $("submit-error").textContent = "";
  try {
    const body = JSON.parse(byId("config", HTMLTextAreaElement).value || "{}");
    /** @type {{ id: string }} */
    const { id } = await api("/jobs", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    await refreshJobs();
    select(id, false);
  } catch (e) { $("submit-error").textContent = messageOf(e); }
}
async function cancelJob() {
  if (!S.sel || S.external) return;
  try { await api("/jobs/" + S.sel, { method: "DELETE" }); } catch (e) { $("job-error").textContent = messageOf(e); }
}
/** @param {string} actor */
async function killActor(actor) {
  try { await api("/jobs/" + S.sel + "/actors/" + encodeURIComponent(actor) + "/kill", { method: "POST", body: '{"signal":"SIGKILL"}', headers: { "Content-Type": "application/json" } }); }
  catch (e) { $("job-error").textContent = messageOf(e); }
}

/**
 * @param {Run} r
 * @returns {View}
 */
function extView(r) { return { id: r.id, status: r.status, external: true, total_steps: r.total_steps ?? r.step, step: r.step, runs: null, error: null }; }
/**
 * @param {string} id
 * @param {boolean} external
 */
function select(id, external) {
  if (S.ctrl) S.ctrl.abort();
  const ctrl = new AbortController();
  Object.assign(S, { sel: id, external: Boolean(external), view: null, steps: [], events: [], actors: [], ctrl, lastEventId: null, hover: {} });
  for (const c of CHARTS) $(c.id + "-tip").hidden = true;
  if (external) {
    const run = S.ext.find((r) => r.id === id);
    if (run) S.view = extView(run);
    loadExternal(id);
  } else follow(id, ctrl.signal);
  renderJobs(); schedule();
}
/**
 * An external run's history: polled (from the last step held) while it runs; it has no event stream.
 * @param {string} id
 */
async function loadExternal(id) {
  try {
    const since = S.steps.at(-1)?.step ?? 0;
    /** @type {{ steps: StepMetrics[] }} */
    const { steps } = await api("/external-runs/" + encodeURIComponent(id) + "/metrics?since=" + since);
    if (S.sel !== id || !S.external) return;
    for (const m of steps) if (m.step > (S.steps.at(-1)?.step ?? -Infinity)) S.steps.push(m);
    const last = S.steps.at(-1);
    if (S.view && last) S.view.step = last.step;
    schedule();
  } catch (e) { if (S.sel === id) $("job-error").textContent = messageOf(e); }
}
/**
 * Server-Sent Events over fetch (EventSource cannot send a bearer token). A dropped stream is
 * followed again from the last event seen (Last-Event-ID), so nothing is fetched twice.
 * @param {string} id
 * @param {AbortSignal} signal
 */
async function follow(id, signal) {
  try {
    /** @type {Record<string, string>} */
    const resume = S.lastEventId === null ? {} : { "Last-Event-ID": S.lastEventId };
    const res = await fetch("/jobs/" + id + "/events", { headers: headers(Object.assign({ Accept: "text/event-stream" }, resume)), signal });
    if (!res.ok) throw new Error("events: HTTP " + res.status);
    if (!res.body) throw new Error("events: no body");
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
  } catch (e) { if (!signal.aborted) $("job-error").textContent = messageOf(e); }
  if (!signal.aborted && S.view && !FINISHED.includes(S.view.status)) setTimeout(() => S.sel === id && !signal.aborted && follow(id, signal), 1000);
}
/**
 * One SSE event of the selected job (app.ts `sseEvent` writes them).
 * @param {string} type
 * @param {unknown} data
 */
function onEvent(type, data) {
  if (type === "status" || type === "end") {
    const d = /** @type {Job} */ (data);
    S.view = d; if (d.actors.length) S.actors = d.actors; refreshJobs();
  } else if (type === "step") {
    const d = /** @type {{ step: number; metrics: Record<string, number> }} */ (data);
    S.steps.push(Object.assign({ step: d.step }, d.metrics)); if (S.view) S.view.step = d.step;
  } else if (type === "actor") {
    const d = /** @type {{ event: ActorEvent; actors: Actor[]; step?: number }} */ (data);
    if (d.step !== undefined) d.event.step = d.step; S.events.push(d.event); if (d.actors.length) S.actors = d.actors;
  }
  schedule();
}
function schedule() { if (!S.dirty) { S.dirty = true; requestAnimationFrame(render); } }

const W = 440, H = 210, L = 44, R = 10, T = 10, B = 30;
/**
 * 1, 2 or 5 × 10^k: the smallest such interval giving at most n ticks over span.
 * @param {number} span
 * @param {number} n
 */
function nice(span, n) {
  const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  // 10 × p always qualifies (raw < 10 × p): the fallback is never taken.
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * p;
}
/** @param {number} total */
const tickStep = (total) => Math.max(1, nice(Math.max(total, 1), 6));
/**
 * A y tick label: as many decimals as the tick interval needs.
 * @param {number} v
 * @param {number} every
 */
function tickLabel(v, every) {
  if (Math.abs(v) < every / 2) return "0";
  if (every < 1e-3 || Math.abs(v) >= 1e6) return v.toExponential(1);
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(every) + 1e-9)));
}
/**
 * @param {Chart} spec
 * @returns {Geometry}
 */
function geometry(spec) {
  /** @type {[number, number][]} */
  const pts = S.steps.flatMap((m) => { const v = m[spec.key]; return isNum(v) && isNum(m.step) ? [[m.step, v]] : []; });
  const lastStep = pts.at(-1)?.[0] ?? 0;
  const total = Math.max(S.view && isNum(S.view.total_steps) ? S.view.total_steps : 0, lastStep, 1);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (!pts.length) { lo = 0; hi = 1; }
  if (spec.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
  if (hi - lo < 1e-12) { const d = Math.abs(hi) * 0.1 || 1; lo -= spec.zero && lo >= 0 ? 0 : d; hi += d; }
  // The y range widened to whole tick intervals, so every grid line has a round value.
  const every = nice(hi - lo, 4);
  lo = Math.floor(lo / every + 1e-9) * every; hi = Math.ceil(hi / every - 1e-9) * every;
  /** @param {number} s */
  const x = (s) => L + (W - L - R) * (s / total);
  /** @param {number} v */
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  return { pts, total, lo, hi, every, x, y };
}
/** @param {Chart} spec */
function chart(spec) {
  const svg = svgById(spec.id); svg.replaceChildren();
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
  const last = pts.at(-1);
  $(spec.id + "-latest").textContent = last ? short(last[1]) + " @ " + last[0] : "";
  const pointer = S.hover[spec.id];
  if (pointer !== undefined) hover(spec, pointer, g);
}
/**
 * The guide line, the point and the tooltip for the point nearest to viewBox x vx.
 * @param {Chart} spec
 * @param {number} vx
 * @param {Geometry} [g]
 */
function hover(spec, vx, g) {
  g = g || geometry(spec);
  const svg = svgById(spec.id), tip = $(spec.id + "-tip");
  svg.querySelector(".hover")?.remove();
  let best = g.pts[0];
  if (!best) { tip.hidden = true; return; }
  for (const p of g.pts) if (Math.abs(g.x(p[0]) - vx) < Math.abs(g.x(best[0]) - vx)) best = p;
  const px = g.x(best[0]), py = g.y(best[1]);
  svg.append(el("svg:g", { class: "hover" },
    el("svg:line", { x1: px, x2: px, y1: T, y2: H - B, stroke: "#8b94a3", "stroke-dasharray": "2 3" }),
    el("svg:circle", { cx: px, cy: py, r: 4, fill: spec.color, stroke: "#0f1217", "stroke-width": 1.5 })));
  tip.textContent = "step " + best[0] + "\n" + spec.key + " " + short(best[1]);
  tip.hidden = false;
  // The chart's section holds the tooltip (position: relative): the tip is placed in its coordinates.
  const host = /** @type {HTMLElement} */ (svg.parentElement).getBoundingClientRect();
  const box = svg.getBoundingClientRect(), k = box.width / W;
  const left = box.left - host.left + px * k, top = box.top - host.top + py * k;
  tip.style.left = (px > W * 0.62 ? left - tip.offsetWidth - 10 : left + 10) + "px";
  tip.style.top = Math.max(0, top - tip.offsetHeight - 8) + "px";
}
for (const spec of CHARTS) {
  const svg = svgById(spec.id);
  /** @param {MouseEvent} ev */
  const at = (ev) => { const box = svg.getBoundingClientRect(); return (ev.clientX - box.left) * W / box.width; };
  svg.addEventListener("mousemove", (ev) => { const vx = at(ev); S.hover[spec.id] = vx; hover(spec, vx); });
  svg.addEventListener("mouseleave", () => { delete S.hover[spec.id]; svg.querySelector(".hover")?.remove(); $(spec.id + "-tip").hidden = true; });
}

/** @type {Record<string, string>} */
const KIND_COLOR = { death: "#ef5350", restart: "#66bb6a", retry: "#ffa726", failed: "#e040fb", health: "#42a5f5", stopped: "#8b94a3" };
/**
 * What the timeline list says about an event after its type and actor.
 * @param {ActorEvent} e
 */
function eventText(e) {
  return e.type === "death" ? (e.cause || "") + (e.signal ? " " + e.signal : "") + (e.detail ? " — " + e.detail : "")
    : e.type === "restart" ? "incarnation " + e.incarnation + " in " + e.latency_ms + " ms"
    : e.type === "retry" ? e.method + " attempt " + e.attempt : e.type === "health" ? (e.healthy ? "healthy" : "unhealthy") : (e.reason || "");
}
function timeline() {
  const svg = svgById("timeline"); svg.replaceChildren();
  const TW = 1140, TH = 46;
  const evs = S.events.filter((e) => e.type !== "stopped");
  svg.setAttribute("data-events", String(evs.length));
  const v = S.view;
  const start = v && v.started_at ? Date.parse(v.started_at) : (evs[0] ? evs[0].ts : Date.now());
  const end = v && v.finished_at ? Date.parse(v.finished_at) : Date.now();
  const span = Math.max(end - start, 1000);
  svg.append(el("svg:line", { x1: 0, x2: TW, y1: TH / 2, y2: TH / 2, stroke: "#2a303b" }));
  /** @type {Record<string, number>} */
  const rows = { death: 12, failed: 12, restart: 24, retry: 34, health: 40 };
  for (const e of evs) {
    const cx = Math.min(TW - 4, Math.max(4, (e.ts - start) / span * TW));
    svg.append(el("svg:circle", { cx, cy: rows[e.type] || 23, r: 4, fill: KIND_COLOR[e.type] || "#fff", "data-kind": e.type }, el("svg:title", {}, e.type + " " + e.actor)));
  }
  const list = $("timeline-list"); list.replaceChildren();
  for (const e of evs.slice(-200).reverse()) {
    list.append(el("div", { class: "ev-" + e.type }, el("span", { class: "dim" }, new Date(e.ts).toLocaleTimeString() + " "),
      el("b", { style: "color:" + (KIND_COLOR[e.type] || "#fff") }, e.type), " " + e.actor + " " + eventText(e)));
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
  /** @type {Record<string, number>} */
  const last = S.steps.at(-1) || {};
  const val = lastVal();
  const valText = val ? fmt(val["val/score"]) + " (step " + val.step + ")" : v && !v.external && v.result ? fmt(v.result.finalValScore) : "-";
  $("job-facts").textContent = v ? "step " + v.step + "/" + (v.total_steps ?? "?") + " · reward " + fmt(last["critic/score/mean"]) +
    " · val score " + valText + " · entropy " + short(last["actor/entropy"]) + " · kl " + short(last["actor/ppo_kl"]) +
    " · " + fmt(last["perf/throughput"], 0) + " tok/s" + (v.external ? "" : " · runs " + v.runs) : "";
  $("job-error").textContent = v && v.error ? v.error : "";
  $("cancel").hidden = !v || Boolean(v.external) || !["queued", "running"].includes(v.status);
  for (const spec of CHARTS) chart(spec);
  actorsTable();
  timeline();
  const cell = document.querySelector("#jobs-body tr.sel td.val");
  const j = S.jobs.find((j) => j.id === S.sel) || S.ext.find((r) => r.id === S.sel);
  if (cell && j) cell.textContent = fmt(valOf(j));
}
$("submit").addEventListener("submit", submitJob);
$("cancel").addEventListener("click", cancelJob);
$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault(); sessionStorage.setItem("revenant-token", byId("token", HTMLInputElement).value); $("auth-form").hidden = true; refreshJobs();
});
$("chaos").textContent = CHAOS ? "chaos enabled" : "chaos off";
refreshJobs();
setInterval(refreshJobs, 3000);
