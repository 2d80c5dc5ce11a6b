/**
 * Runs a `bun run train` wrote into the coordinator's run dir (config.json and metrics.jsonl, no
 * job.json) are listed read-only, with a status from their files; the coordinator's own jobs, odd
 * names and half-made folders are not. Times are passed in (`now`), never waited for.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { externalRunHistory, externalRunsApp, listExternalRuns } from "../../runtime/service/server/external_runs.ts";
import { removeTempDirs, tempDir } from "./helpers.ts";

afterAll(removeTempDirs);

const step = (n: number, extra: Record<string, number> = {}) => JSON.stringify({ step: n, "critic/score/mean": n / 10, "actor/entropy": 2 - n / 10, "actor/kl": n / 100, ...extra });

function run(dir: string, name: string, o: { steps: number; summary?: boolean; record?: boolean; mtime?: Date; torn?: boolean; noMetrics?: boolean }): void {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, "config.json"), JSON.stringify({ data: { task: "addition" }, trainer: { total_steps: 10 } }));
  if (!o.noMetrics) {
    const lines = Array.from({ length: o.steps }, (_, i) => step(i + 1, (i + 1) % 2 === 0 ? { "val/score": (i + 1) / 20 } : {}));
    writeFileSync(join(d, "metrics.jsonl"), lines.join("\n") + "\n" + (o.torn ? '{"step": 9, "critic' : ""));
    if (o.mtime) utimesSync(join(d, "metrics.jsonl"), o.mtime, o.mtime);
  }
  if (o.summary) writeFileSync(join(d, "summary.json"), "{}");
  if (o.record) writeFileSync(join(d, "job.json"), "{}");
}

test("lists external runs with a status from their files, and nothing else", () => {
  const dir = tempDir("external");
  const now = Date.parse("2030-01-01T00:00:00Z");
  run(dir, "done", { steps: 10, summary: true, mtime: new Date(now - 3_600_000) });
  run(dir, "live", { steps: 5, mtime: new Date(now - 1_000), torn: true });
  run(dir, "dead", { steps: 3, mtime: new Date(now - 3_600_000) });
  run(dir, "server-job", { steps: 4, record: true });
  run(dir, "no-metrics", { steps: 0, noMetrics: true });
  mkdirSync(join(dir, ".hidden"));
  writeFileSync(join(dir, "coordinator.lock"), "");
  symlinkSync("/dev/null", join(dir, "weird"));

  const runs = listExternalRuns(dir, { now });
  expect(runs.map((r) => r.id).sort()).toEqual(["dead", "done", "live"]);
  const by = Object.fromEntries(runs.map((r) => [r.id, r]));
  expect(by.done).toMatchObject({ external: true, status: "succeeded", task: "addition", total_steps: 10, step: 10, val_score: 0.5 });
  expect(by.live).toMatchObject({ status: "running", step: 5, val_score: 0.2 }); // the torn last line is skipped
  expect(by.dead).toMatchObject({ status: "stopped", step: 3, val_score: 0.1 });
  expect(by.live!.metrics!["actor/entropy"]).toBeCloseTo(1.5);
  expect(listExternalRuns(dir, { now, max: 1 })).toHaveLength(1);
  expect(listExternalRuns(join(dir, "missing"))).toEqual([]);

  expect(externalRunHistory(dir, "done", 7)!.map((m) => m.step)).toEqual([8, 9, 10]);
  for (const name of ["server-job", "no-metrics", "..", "../done", ".hidden", "nope"]) expect(externalRunHistory(dir, name)).toBeUndefined();
});

test("the routes: list, history, 404 and 400", async () => {
  const dir = tempDir("external-app");
  run(dir, "cli-run", { steps: 4, summary: true });
  const app = externalRunsApp(dir);
  const list = await app.request("/");
  expect(list.status).toBe(200);
  expect(((await list.json()) as any).runs.map((r: { id: string }) => r.id)).toEqual(["cli-run"]);
  const hist = await app.request("/cli-run/metrics?since=2");
  expect(hist.status).toBe(200);
  expect(((await hist.json()) as any).steps.map((m: { step: number }) => m.step)).toEqual([3, 4]);
  expect((await app.request("/other/metrics")).status).toBe(404);
  expect((await app.request("/..%2F..%2Fetc/metrics")).status).toBe(404);
  const bad = await app.request("/cli-run/metrics?since=-1");
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as any).error.code).toBe("invalid_query");
});
