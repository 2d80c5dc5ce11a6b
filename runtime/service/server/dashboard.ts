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
 * The page's script is dashboard_client.js, read once and inlined (the CSP allows inline scripts
 * only); what it needs from the server comes as a typed `DashboardConfig` in a JSON element.
 *
 * @example
 * ```ts
 * app.get("/", (c) => c.html(dashboardHtml({ chaos: false })));
 * ```
 */
import { readFileSync } from "node:fs";
import type { DashboardActor, DashboardChart, DashboardConfig, DashboardJob, DashboardRun } from "./dashboard_types.ts";
import type { ExternalRun } from "./external_runs.ts";
import type { ActorRow, JobView } from "./schemas.ts";

export interface DashboardOptions {
  chaos: boolean;
}

/**
 * The client's picture of the API held to the server's own types: a field the script reads that
 * the server renames or drops fails the type check here.
 */
type Fits<Served extends Expected, Expected> = [Served, Expected];
type WireShapes = [Fits<JobView, DashboardJob>, Fits<ExternalRun, DashboardRun>, Fits<ActorRow, DashboardActor>];

const DEFAULT_JOB = {
  trainer: { total_steps: 60, val_interval: 10 },
  data: { train_size: 256, val_size: 32, train_batch_size: 16 },
  worker: { actor: { ppo_mini_batch_size: 16 }, critic: { ppo_mini_batch_size: 16 } },
  checkpoint: { interval: 10 },
};

/** The charts: one metric each, its own y scale. */
const CHARTS: readonly DashboardChart[] = [
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

/**
 * The page's script, as the browser runs it. Plain JavaScript (typed by JSDoc), so both Bun and
 * Deno serve it without a build step. Inlined in a <script> element, it must not close that element.
 */
const CLIENT = readFileSync(new URL("./dashboard_client.js", import.meta.url), "utf8");
if (/<\/script/i.test(CLIENT)) throw new Error("dashboard_client.js contains \"</script\", which would end its inline <script> early");

/** JSON that is safe inside a <script> element: no "<" can open "</script>" or "<!--" there. */
const scriptJson = (value: unknown) => JSON.stringify(value).replaceAll("<", "\\u003c");

const chartSection = (c: DashboardChart) =>
  `<section><h2>${c.title} <span class="latest" id="${c.id}-latest"></span></h2><div class="legend"><span><i style="background:${c.color}"></i>${c.key}</span></div>
      <svg id="${c.id}" class="chart" viewBox="0 0 440 210" role="img" aria-label="${c.key} per step"></svg><div class="tip" id="${c.id}-tip" hidden></div></section>`;

/** What the page's script is told. */
const pageConfig = (o: DashboardOptions): DashboardConfig => ({ chaos: o.chaos, charts: CHARTS });

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
<script id="dashboard-config" type="application/json">${scriptJson(pageConfig(o))}</script>
<script>${CLIENT}</script>
</body></html>`;
}
