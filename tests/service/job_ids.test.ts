/**
 * Job ids: one pattern makes and checks them, every data file name gives a valid one, a job of
 * any name is reachable over every route and resumed after a restart, and a job folder the server
 * cannot read is listed as failed with the file and the reason, never skipped.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../../config/index.ts";
import { createJob, dataName, isJobId, newJobId } from "../../runtime/rl/trainer/job.ts";
import { JobStore } from "../../runtime/service/server/job_store.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import { JobIdSchema } from "../../runtime/service/server/schemas.ts";
import { Rng } from "../../runtime/core/rng.ts";
import { quietManager, removeTempDirs, shortJob, tempDir, until } from "./helpers.ts";

afterAll(removeTempDirs);

const root = join(import.meta.dir, "..", "..");
const DATA = join(root, "examples", "data", "arith_word_problems");
const configFor = (trainFile: string) => resolveConfig({ file: null, env: {}, values: { data: { train_files: [trainFile] } } as never }).config;

describe("the job id pattern", () => {
  const good = "gsm8k-20261207-012110-6ada1d40";

  test("accepts what newJobId makes and nothing with a prefix, a suffix or a path in it", () => {
    expect(isJobId(good)).toBe(true);
    expect(isJobId("GSM8K.v1-2-20261207-012110-6ada1d40")).toBe(true);
    for (const bad of [
      "../../tmp/evil-20260101-000000-deadbeef", // a path before a valid tail
      "..%2F..%2Ftmp%2Fevil-20260101-000000-deadbeef", // the same, encoded
      `x/${good}`, `${good}/x`, `${good}x`, `x${good}`.replace("x", "/"), `${good}\n`, `\n${good}`,
      ".hidden-20261207-012110-6ada1d40", "-flag-20261207-012110-6ada1d40", "-20261207-012110-6ada1d40",
      "gsm8k-20261207-012110-6ADA1D40", "gsm8k-2026127-012110-6ada1d40", `${"a".repeat(65)}-20261207-012110-6ada1d40`,
    ]) {
      expect({ bad, ok: isJobId(bad) }).toEqual({ bad, ok: false });
      expect(JobIdSchema.safeParse(bad).success).toBe(false);
    }
  });

  test("every route answers 404 for an id with a path, a prefix or a suffix, and looks nothing up outside the jobs folder", async () => {
    const runDir = tempDir("job-id-routes");
    // A whole job beside the jobs folder, its record naming it as seen from inside: an id that
    // reached the store would find it and answer 200.
    const outsideId = "evil-20260101-000000-deadbeef";
    const outside = resolveConfig({ file: null, env: {}, values: { trainer: { run_dir: runDir } } as never }).config;
    new JobStore(runDir).save(createJob(outside, outsideId), {
      format: "revenant-job/1", id: `../${outsideId}`, seq: 0, status: "succeeded", submitted_at: new Date(0).toISOString(),
      started_at: null, finished_at: new Date(0).toISOString(), cancel_requested: false, error: null, runs: 1, result: null,
    });
    const jobs = quietManager(join(runDir, "jobs")).start();
    const app = createApp({ jobs, requireHostHeader: false });
    try {
      for (const id of [`..%2F${outsideId}`, `..%2F..%2Ftmp%2F${outsideId}`, `x${good}`, `${good}x`, `${good}%0A`, `%2E%2E%2F${outsideId}`]) {
        for (const [method, path] of [["GET", ""], ["DELETE", ""], ["GET", "/metrics"], ["GET", "/events"]] as const) {
          const res = await app.request(`/jobs/${id}${path}`, { method });
          expect({ id, method, path, status: res.status }).toEqual({ id, method, path, status: 404 });
        }
      }
    } finally {
      await jobs.close();
    }
  });

  test("any data file name gives a valid id (seeded property test over 2,000 names)", () => {
    const seed = 20261207;
    const rng = new Rng(seed);
    const rand = () => rng.nextU32() / 2 ** 32;
    const pieces = ["a", "Z", "7", ".", "-", "_", " ", "é", "日本", "😀", "—", "%2F", "..", "\t", "$", "'"];
    for (let i = 0; i < 2000; i++) {
      const parts: string[] = [];
      const target = 1 + Math.floor(rand() * 255);
      while (Buffer.byteLength(parts.join("")) < target) parts.push(pieces[Math.floor(rand() * pieces.length)]!);
      let name = parts.join("");
      while (Buffer.byteLength(name) > 255) name = name.slice(0, -1);
      const file = `/data/${name}.jsonl`;
      const id = newJobId(configFor(file), Date.UTC(2026, 11, 7, 1, 21, 10));
      if (!isJobId(id)) throw new Error(`seed ${seed}, name #${i} ${JSON.stringify(name)}: invalid id ${JSON.stringify(id)}`);
      expect(id.startsWith(`${dataName(configFor(file))}-20261207-012110-`)).toBe(true);
    }
  });
});

describe("jobs of every name", () => {
  // Digits, capitals, dots, dashes, Unicode, leading punctuation, and a file name of 255 bytes.
  const NAMES = ["GSM8K-v1.2", "2024.12.data", "données—été", "-leading-dash", "_.", "日本語", `${"Ab9.-".repeat(49)}Ab9.`];

  test("are reachable over every route, resumed after a restart, and finish", async () => {
    const dataDir = tempDir("job-names");
    const train = readFileSync(join(DATA, "train.jsonl"), "utf8").split("\n").slice(0, 16).join("\n") + "\n";
    const val = join(dataDir, "val.jsonl");
    writeFileSync(val, readFileSync(join(DATA, "val.jsonl"), "utf8").split("\n").slice(0, 8).join("\n") + "\n");
    const body = (name: string) => {
      writeFileSync(join(dataDir, `${name}.jsonl`), train);
      // Paths relative to the served folders (--data-root, --model-root).
      return shortJob(2, {
        data: { train_files: [`${name}.jsonl`], val_files: ["val.jsonl"], tokenizer: "tokenizer", train_batch_size: 8 },
        reward: { name: "math" },
        checkpoint: { interval: 1 },
        worker: {
          actor: { ppo_mini_batch_size: 8, max_new_tokens: 2, model: { arch: "llama", context: 80, width: 8, layers: 1, heads: 1 } },
          critic: { ppo_mini_batch_size: 8, model: { arch: "llama", context: 80, width: 8, layers: 1, heads: 1 } },
        },
      });
    };
    const runDir = tempDir("job-names-run");
    const roots = { dataRoots: [dataDir], modelRoots: [join(root, "tests", "fixtures")] };
    const first = quietManager(runDir, 1, roots).start();
    const firstApp = createApp({ jobs: first, requireHostHeader: false });
    const ids: string[] = [];
    for (const name of NAMES) {
      const res = await firstApp.request("/jobs", { method: "POST", body: JSON.stringify(body(name)), headers: { "Content-Type": "application/json" } });
      expect(res.status).toBe(202);
      const id = ((await res.json()) as { id: string }).id;
      expect(isJobId(id)).toBe(true);
      expect((await firstApp.request(`/jobs/${encodeURIComponent(id)}`)).status).toBe(200);
      ids.push(id);
    }
    // The coordinator stops with the first job running and the rest queued behind it.
    await first.close();

    const second = quietManager(runDir, 1, roots).start();
    const app = createApp({ jobs: second, requireHostHeader: false });
    try {
      const listed = ((await (await app.request("/jobs")).json()) as { jobs: Array<{ id: string }> }).jobs.map((j) => j.id);
      expect(listed).toEqual(ids);
      for (const id of ids) {
        const path = `/jobs/${encodeURIComponent(id)}`;
        const done = await until(async () => {
          const v = (await (await app.request(path)).json()) as { status: string; error: string | null };
          return v.status === "succeeded" || v.status === "failed" ? v : undefined;
        }, `job ${id} to finish`, 120_000);
        expect({ id, status: done!.status, error: done!.error }).toEqual({ id, status: "succeeded", error: null });
        expect((await app.request(`${path}/metrics`)).status).toBe(200);
        expect((await app.request(`${path}/events`)).status).toBe(200);
        // A finished job cannot be cancelled: 409, which proves DELETE found it.
        expect((await app.request(path, { method: "DELETE" })).status).toBe(409);
      }
    } finally {
      await second.close();
    }
  }, 240_000);
});

describe("job folders the server cannot read", () => {
  test("are listed as failed with the file and the reason, and reported as errors", async () => {
    const runDir = tempDir("job-unreadable");
    const torn = "torn-20261207-012110-0000beef";
    mkdirSync(join(runDir, torn));
    writeFileSync(join(runDir, torn, "job.json"), '{"format": "revenant-job/1", "id": "torn-');
    const notAnId = "Not An Id";
    mkdirSync(join(runDir, notAnId));
    writeFileSync(join(runDir, notAnId, "job.json"), "{}");
    const lines: string[] = [];
    const jobs = quietManager(runDir, 1, { log: (l) => lines.push(l) }).start();
    const app = createApp({ jobs, requireHostHeader: false });
    try {
      const view = (await (await app.request(`/jobs/${torn}`)).json()) as { status: string; error: string };
      expect(view.status).toBe("failed");
      expect(view.error).toContain(join(runDir, torn, "job.json"));
      expect(view.error).toContain("JSON");
      expect(lines.filter((l) => l.startsWith("error: job folder cannot be read:"))).toHaveLength(2);
      expect(lines.some((l) => l.includes(join(runDir, notAnId, "job.json")))).toBe(true);
      expect(((await (await app.request("/jobs")).json()) as { jobs: Array<{ id: string }> }).jobs.map((j) => j.id)).toEqual([torn]);
    } finally {
      await jobs.close();
    }
  });
});
