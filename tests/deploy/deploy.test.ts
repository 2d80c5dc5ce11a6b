/**
 * The deploy/ folder: Prometheus rules and config pass promtool (and the alerts fire on synthetic
 * series, deploy/prometheus/alerts.test.yml), the Grafana dashboard and the alerts only ask for
 * metrics and labels the coordinator exports (checked against a real renderPrometheus exposition),
 * compose.yaml, the Dockerfiles and the systemd unit hold together.
 *
 * Docker cannot run here, so the images are not built by this suite: it checks their files only.
 * promtool and systemd-analyze are used where installed; a check without them is skipped, saying why.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { validateConfig } from "../../config/load.ts";
import { SHIPPED_ROLES } from "../../roles/index.ts";
import { MetricsRegistry } from "../../runtime/core/metrics/registry.ts";
import { faultSnapshot, renderPrometheus } from "../../runtime/service/server/prometheus.ts";
import { removeTempDirs, tempDir } from "../helpers/tmp.ts";

afterAll(removeTempDirs);

const ROOT = resolve(import.meta.dir, "../..");
const DEPLOY = join(ROOT, "deploy");
const read = (path: string) => readFileSync(join(DEPLOY, path), "utf8");

/** Runs a tool; undefined (and a printed reason) when it is not installed. */
function tool(name: string): string | undefined {
  const path = Bun.which(name) ?? undefined;
  if (!path) console.log(`skipped: ${name} not found; the checks that need it do not run`);
  return path;
}
const promtool = tool("promtool");
const systemdAnalyze = tool("systemd-analyze");

function run(cmd: string, args: string[], cwd = DEPLOY, env: Record<string, string | undefined> = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// ---- what the coordinator exports ----------------------------------------------------------

/** A real exposition with every family populated: two roles, a restart, a health probe, a step. */
function sampleExposition(): string {
  const registry = new MetricsRegistry();
  for (const role of ["actor_rollout", "critic"]) {
    registry.addRole(role);
    registry.recordFailure(role);
    registry.recordRestart(role, 120);
    registry.recordRetry(role);
    registry.setHealth(role, true);
  }
  return renderPrometheus({
    runtime: "bun", version: "test", counts: { queued: 0, running: 1, failed: 0 },
    jobs: [{ id: "gsm8k-1", step: 3, totalSteps: 10, latest: { "critic/score/mean": 0.5, "perf/throughput": 900 }, valScore: 0.4, faults: faultSnapshot(registry) }],
  });
}

interface Exported {
  metrics: Set<string>;
  labels: Set<string>;
  /** Metrics whose series carry a job_id label. */
  perJob: Set<string>;
}

function exported(text: string): Exported {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  const perJob = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) throw new Error(`unparsed exposition line: ${line}`);
    metrics.add(m[1]!);
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      labels.add(l[1]!);
      if (l[1] === "job_id") perJob.add(m[1]!);
    }
  }
  return { metrics, labels, perJob };
}

const EXPORTED = exported(sampleExposition());
/** Labels Prometheus itself attaches to every scraped series. */
const TARGET_LABELS = ["job", "instance"];

// ---- reading PromQL just enough ------------------------------------------------------------

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "Inf", "NaN"]);
const LABEL_LISTS = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** Strings, label matchers, ranges and label lists removed: what is left names metrics and functions. */
const skeleton = (expr: string) => expr
  .replace(/"(?:[^"\\]|\\.)*"/g, '""')
  .replace(/\{[^}]*\}/g, "")
  .replace(/\[[^\]]*\]/g, "")
  .replace(LABEL_LISTS, "");

/** The metric names an expression selects (identifiers not called as functions, not keywords). */
function metricNames(expr: string): string[] {
  const bare = skeleton(expr);
  return [...bare.matchAll(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((m) => !KEYWORDS.has(m[0]) && !bare.slice(m.index! + m[0].length).trimStart().startsWith("("))
    .map((m) => m[0]);
}

/** The label names an expression matches on or groups by. */
function labelNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const matchers = [...noStrings.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!));
  const lists = [...noStrings.matchAll(LABEL_LISTS)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()).filter(Boolean));
  return [...matchers, ...lists];
}

test("the PromQL reader finds metric and label names (and nothing else)", () => {
  const expr = 'histogram_quantile(0.9, sum by (job_id, le) (rate(revenant_x_bucket{job_id=~"$job_id", role!="a b"}[$__rate_interval]))) > 5 and on(job_id) up offset 10m';
  expect(metricNames(expr)).toEqual(["revenant_x_bucket", "up"]);
  expect(labelNames(expr).sort()).toEqual(["job_id", "job_id", "job_id", "le", "role"]);
});

// ---- Grafana -------------------------------------------------------------------------------

interface Target { expr: string; refId: string }
interface Panel { id: number; type: string; title: string; datasource?: { uid: string }; gridPos: { x: number; w: number }; targets?: Target[] }
const dashboard = JSON.parse(read("grafana/revenant-dashboard.json")) as {
  uid: string; templating: { list: Array<{ name: string; type: string; query: unknown; includeAll?: boolean }> }; panels: Panel[];
};
const queryPanels = dashboard.panels.filter((p) => p.type !== "row");
const dashboardExprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe("Grafana dashboard", () => {
  test("parses, has unique panel ids that fit the grid, and a job_id variable from the exported series", () => {
    expect(dashboard.uid).toBe("revenant-overview");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    const jobVar = dashboard.templating.list.find((v) => v.name === "job_id")!;
    expect(jobVar.type).toBe("query");
    expect(JSON.stringify(jobVar.query)).toContain("label_values(revenant_job_step, job_id)");
    expect(dashboard.templating.list.find((v) => v.name === "datasource")?.type).toBe("datasource");
    for (const p of queryPanels) {
      expect(p.datasource?.uid).toBe("${datasource}");
      expect(p.targets?.length).toBeGreaterThan(0);
    }
  });

  test("every panel asks only for metrics and labels the coordinator exports", () => {
    for (const { panel, expr } of dashboardExprs) {
      for (const name of metricNames(expr)) expect({ panel, metric: name, exported: EXPORTED.metrics.has(name) }).toEqual({ panel, metric: name, exported: true });
      for (const label of labelNames(expr)) expect({ panel, label, exported: EXPORTED.labels.has(label) }).toEqual({ panel, label, exported: true });
    }
  });

  test("covers failures, restarts, retries, health, restart latency, step, val score and throughput", () => {
    const used = new Set(dashboardExprs.flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      "revenant_actor_failures_total", "revenant_actor_restarts_total", "revenant_actor_retries_total", "revenant_actor_health",
      "revenant_actor_restart_latency_seconds_bucket", "revenant_job_step", "revenant_job_val_score", "revenant_job_throughput_tokens_per_second",
    ]) expect(used).toContain(name);
    // Per-job series follow the Job selector; per-coordinator ones (jobs by status, build) do not.
    expect(EXPORTED.perJob).toContain("revenant_actor_restarts_total");
    for (const { panel, expr } of dashboardExprs.filter((e) => metricNames(e.expr).some((n) => EXPORTED.perJob.has(n)))) {
      expect({ panel, filtered: expr.includes('job_id=~"$job_id"') }).toEqual({ panel, filtered: true });
    }
  });

  test.skipIf(!promtool)("every panel's query is valid PromQL (promtool, Grafana's variables filled in)", () => {
    const dir = tempDir("revenant-grafana-");
    const fill = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$__range", "1h").replaceAll("$job_id", ".*");
    const rules = dashboardExprs.map(({ expr }, i) => ({ record: `grafana:panel_query_${i}`, expr: fill(expr) }));
    writeFileSync(join(dir, "panels.yml"), JSON.stringify({ groups: [{ name: "panels", rules }] }));
    const r = run(promtool!, ["check", "rules", "panels.yml"], dir);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.status).toBe(0);
  });
});

// ---- Prometheus ----------------------------------------------------------------------------

interface Rule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const alertRules = (parseYaml(read("prometheus/alerts.yml")) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

describe("Prometheus", () => {
  test("each alert has a severity, a summary and a description, and asks only for exported metrics (or `up`)", () => {
    const alerts = alertRules.map((r) => r.alert);
    for (const name of ["RevenantActorCrashLoop", "RevenantActorUnhealthy", "RevenantActorRestarting"]) expect(alerts).toContain(name);
    for (const rule of alertRules) {
      expect(["critical", "warning"]).toContain(rule.labels?.severity ?? "(none)");
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      for (const name of metricNames(rule.expr)) expect({ alert: rule.alert, name, ok: name === "up" || EXPORTED.metrics.has(name) }).toEqual({ alert: rule.alert, name, ok: true });
      for (const label of labelNames(rule.expr)) {
        expect({ alert: rule.alert, label, ok: EXPORTED.labels.has(label) || TARGET_LABELS.includes(label) }).toEqual({ alert: rule.alert, label, ok: true });
      }
    }
  });

  test.skipIf(!promtool)("promtool check rules accepts alerts.yml", () => {
    const r = run(promtool!, ["check", "rules", "prometheus/alerts.yml"]);
    expect(r.out).toContain(`SUCCESS: ${alertRules.length} rules found`);
    expect(r.status).toBe(0);
  });

  test.skipIf(!promtool)("promtool check config accepts prometheus.yml (and the rule files it loads)", () => {
    expect(run(promtool!, ["check", "config", "--syntax-only", "prometheus/prometheus.yml"]).status).toBe(0);
    // The full check also wants the scrape token file, which compose mounts; give it a stand-in.
    const dir = tempDir("revenant-prom-");
    const token = join(dir, "revenant_token");
    writeFileSync(token, "stand-in\n");
    const config = read("prometheus/prometheus.yml");
    expect(config).toContain("credentials_file: /run/secrets/revenant_token");
    writeFileSync(join(dir, "prometheus.yml"), config.replace("/run/secrets/revenant_token", token));
    writeFileSync(join(dir, "alerts.yml"), read("prometheus/alerts.yml"));
    const r = run(promtool!, ["check", "config", "prometheus.yml"], dir);
    expect(r.out).toContain("SUCCESS: 1 rule files found");
    expect(r.status).toBe(0);
  });

  test.skipIf(!promtool)("promtool test rules: the crash-loop, health, restart-rate and other alerts fire on synthetic series", () => {
    const r = run(promtool!, ["test", "rules", "prometheus/alerts.test.yml"]);
    expect(r.out).toContain("SUCCESS");
    expect(r.status).toBe(0);
  });

  test("the scrape target is the compose service and the coordinator's port", () => {
    const config = parseYaml(read("prometheus/prometheus.yml")) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }> };
    const scrape = config.scrape_configs.find((s) => s.job_name === "revenant")!;
    expect(scrape.static_configs[0]!.targets).toEqual(["coordinator:8321"]);
    expect(alertRules.find((r) => r.alert === "RevenantCoordinatorDown")!.expr).toContain('job="revenant"');
  });
});

// ---- compose, Docker, entrypoint -----------------------------------------------------------

interface Service { build?: { context: string; dockerfile: string }; volumes?: string[]; ports?: string[]; secrets?: string[]; stop_grace_period?: string }
const compose = parseYaml(read("compose.yaml")) as { services: Record<string, Service>; volumes: Record<string, unknown>; secrets: Record<string, { file: string }> };

describe("compose and Docker", () => {
  test("compose runs the coordinator, Prometheus and Grafana; every mounted file exists and every volume is declared", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["coordinator", "grafana", "prometheus"]);
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(":")[0]!;
        if (source.startsWith(".")) expect({ name, source, exists: existsSync(join(DEPLOY, source)) }).toEqual({ name, source, exists: true });
        else expect(Object.keys(compose.volumes)).toContain(source);
      }
    }
    expect(compose.services.coordinator!.volumes).toContain("revenant-runs:/app/runs");
    const build = compose.services.coordinator!.build!;
    expect(existsSync(join(DEPLOY, build.context, build.dockerfile))).toBe(true);
    expect(compose.secrets.revenant_token!.file).toBe("./secrets/revenant_token");
    const datasource = read("grafana/provisioning/datasources/prometheus.yml");
    expect(datasource).toContain("url: http://prometheus:9090");
  });

  for (const file of ["Dockerfile", "Dockerfile.cuda"]) {
    test(`${file}: multi-stage, non-root, health-checked, token-guarded, and every COPY source exists`, () => {
      const text = read(file);
      const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
      expect(froms.length).toBeGreaterThanOrEqual(3);
      if (file === "Dockerfile") expect(froms.filter((f) => f.startsWith("debian:bookworm"))).toHaveLength(2);
      else expect(froms.slice(1).map((f) => f.split(":")[1]!.split("-")[1])).toEqual(["devel", "runtime"]);
      expect(text).toMatch(/^USER revenant$/m);
      expect(text).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
      expect(text).toContain('CMD ["bun", "run", "serve", "--host", "0.0.0.0"');
      expect(text).toContain("revenant-entrypoint");
      expect(text).toContain("--CDREVENANT_NATIVE_ARCH=OFF");
      for (const m of text.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)) {
        for (const source of m[1]!.trim().split(/\s+/)) expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true });
      }
    });
  }

  test("the entrypoint reads the token from REVENANT_TOKEN_FILE and refuses to start without one", () => {
    const dir = tempDir("revenant-entry-");
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "s3cret\n");
    const printToken = ["deploy/docker-entrypoint.sh", "sh", "-c", 'printf %s "$REVENANT_TOKEN"'];
    const env = { PATH: process.env.PATH };
    const ok = run("sh", printToken, ROOT, { ...env, REVENANT_TOKEN_FILE: tokenFile });
    expect(ok).toEqual({ status: 0, out: "s3cret" });
    expect(run("sh", printToken, ROOT, { ...env, REVENANT_TOKEN: "direct" })).toEqual({ status: 0, out: "direct" });
    const none = run("sh", printToken, ROOT, env);
    expect(none.status).toBe(2);
    expect(none.out).toContain("set REVENANT_TOKEN");
    const missing = run("sh", printToken, ROOT, { ...env, REVENANT_TOKEN_FILE: join(dir, "absent") });
    expect(missing.status).toBe(2);
    expect(missing.out).toContain("not a readable file");
  });
});

// ---- systemd -------------------------------------------------------------------------------

/** `[Section]` → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) sections.set(section[1]!, (current = new Map()));
    else {
      const eq = line.indexOf("=");
      current!.set(line.slice(0, eq), [...(current!.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
    }
  }
  return sections;
}

/** systemd time spans used here: "120", "120s", "2min", "2m". */
function seconds(span: string): number {
  const m = /^(\d+)\s*(s|sec|m|min)?$/.exec(span);
  if (!m) throw new Error(`unsupported time span ${span}`);
  return Number(m[1]) * (m[2]?.startsWith("m") ? 60 : 1);
}

describe("systemd unit", () => {
  const unitText = read("systemd/revenant.service");
  const unit = parseUnit(unitText);
  const service = unit.get("Service")!;
  const one = (key: string) => {
    expect(service.get(key)).toHaveLength(1);
    return service.get(key)![0]!;
  };

  test("restarts on failure, lets the coordinator stop its actors, and waits longer than their grace", () => {
    expect(one("Restart")).toBe("on-failure");
    expect(one("KillMode")).toBe("mixed");
    expect(one("KillSignal")).toBe("SIGTERM");
    // The coordinator stops actors one after another, each within shutdown_grace_s.
    const grace = validateConfig({}).fault_tolerance.shutdown_grace_s * Object.keys(SHIPPED_ROLES).length;
    expect(seconds(one("TimeoutStopSec"))).toBeGreaterThan(grace);
    expect(one("WorkingDirectory")).toStartWith("/");
    expect(one("EnvironmentFile")).toBe("/etc/revenant/revenant.env");
    expect(one("ExecStart")).toMatch(/ run serve --host 0\.0\.0\.0 /);
    expect(one("User")).toBe("revenant");
    expect(unit.get("Install")!.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  test.skipIf(!systemdAnalyze)("systemd-analyze verify accepts it (with this machine's bun in ExecStart)", () => {
    const dir = tempDir("revenant-unit-");
    const path = join(dir, "revenant.service");
    writeFileSync(path, unitText.replace("/usr/local/bin/bun", process.execPath));
    const r = run(systemdAnalyze!, ["verify", path], dirname(path));
    expect(r).toEqual({ status: 0, out: "" });
  });
});
