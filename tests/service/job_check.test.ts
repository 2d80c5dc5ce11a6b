/**
 * POST /jobs checks that a job fits without generating its data set (job_check.ts): the
 * analytical check refuses exactly what the trainer's own check (which generates the data)
 * refuses, naming the same key; the worst body the schema allows is checked without drawing a
 * single prompt; and /healthz answers while such a POST is in flight over a real socket.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { resolveConfig } from "../../config/index.ts";
import { LIMITS } from "../../config/schema.ts";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import { checkJobFits } from "../../runtime/service/server/job_check.ts";
import { makeDataset } from "../../runtime/rl/tasks/dataset.ts";
import { TASKS, type TaskName } from "../../runtime/rl/tasks/tasks.ts";
import { promptTokens } from "../../runtime/rl/tasks/tokenizer.ts";
import { checkTaskJobConfig, JobConfigError } from "../../runtime/rl/trainer/trainer.ts";
import { quietManager, rawHttpInTwoParts, shortJob, tempDir, WORST_BODY } from "./helpers.ts";

const runDir = tempDir("check");
const jobs = quietManager(runDir).start();
afterAll(async () => {
  await jobs.close();
  rmSync(runDir, { recursive: true, force: true });
});

const config = (values: Record<string, unknown>) => resolveConfig({ file: null, env: {}, values: values as never }).config;

/** The key a check refuses, or "ok". */
function verdict(check: (c: ReturnType<typeof config>) => void, values: Record<string, unknown>): string {
  try {
    check(config(values));
    return "ok";
  } catch (e) {
    if (!(e instanceof JobConfigError)) throw e;
    return e.path;
  }
}

describe("the analytical check agrees with the trainer's", () => {
  const tasks: TaskName[] = ["digit_reversal", "sorting", "addition"];
  test("task bounds: the longest prompt and the number of distinct prompts", () => {
    for (const name of tasks) {
      const task = TASKS[name];
      for (const [min, max] of [[1, 1], [1, 3], [2, 2], [4, 6]] as const) {
        // Enough draws that every length, and every prompt of the small sets, turns up.
        const ds = makeDataset({ task: name, seed: 3, train_size: 4000, val_size: 1, min_digits: min, max_digits: max, train_batch_size: 1 });
        const prompts = [...ds.train, ...ds.val];
        expect(Math.max(...prompts.map((p) => p.length))).toBe(task.maxPromptLength(max));
        if (task.distinctPrompts(min, max) <= 100) expect(new Set(prompts).size).toBe(task.distinctPrompts(min, max));
      }
    }
    expect(TASKS.digit_reversal.distinctPrompts(1, 2)).toBe(110);
    expect(TASKS.addition.distinctPrompts(1, 1)).toBe(81);
    expect(TASKS.addition.distinctPrompts(LIMITS.digits, LIMITS.digits)).toBeGreaterThan(1e127);
    expect(TASKS.sorting.distinctPrompts(1, 400)).toBe(Infinity);
  });

  const small = { train_batch_size: 8 };
  const cases: Array<[string, Record<string, unknown>]> = [
    ["the defaults", {}],
    ["a short job", shortJob(4)],
    ["max_new_tokens one short", { data: { task: "addition", max_digits: 3, min_digits: 3, ...small }, worker: { actor: { max_new_tokens: 4 } } }],
    ["max_new_tokens just enough", { data: { task: "addition", max_digits: 3, min_digits: 3, ...small }, worker: { actor: { max_new_tokens: 5 } } }],
    ["an actor context one short", { data: { max_digits: 6, min_digits: 6, ...small }, worker: { actor: { max_new_tokens: 7, model: { context: 14 } } } }],
    ["an actor context just enough", { data: { max_digits: 6, min_digits: 6, ...small }, worker: { actor: { max_new_tokens: 7, model: { context: 15 } }, critic: { model: { context: 15 } } } }],
    ["a critic context one short", { data: { max_digits: 6, min_digits: 6, ...small }, worker: { actor: { max_new_tokens: 7, model: { context: 15 } }, critic: { model: { context: 14 } } } }],
    ["grpo with one response per prompt", { algorithm: { adv_estimator: "grpo" } }],
    ["grpo with two", { algorithm: { adv_estimator: "grpo" }, worker: { actor: { rollout_n: 2 } } }],
    ["more held-out prompts than exist", { data: { min_digits: 1, max_digits: 1, val_size: 11, train_size: 10, ...small } }],
    ["every prompt held out", { data: { min_digits: 1, max_digits: 1, val_size: 10, train_size: 10, ...small } }],
    ["too few prompts left to draw from", { data: { min_digits: 2, max_digits: 2, val_size: 99, train_size: 2000, ...small } }],
    ["few left, but enough draws", { data: { min_digits: 2, max_digits: 2, val_size: 90, train_size: 200, ...small } }],
  ];
  for (const [what, values] of cases) {
    test(what, () => {
      const trainer = verdict(checkTaskJobConfig, values);
      const server = verdict(checkJobFits, values);
      // The trainer names the data section; the server the key within it.
      expect(server.startsWith(trainer)).toBe(true);
    });
  }

  test("a context between the drawn longest prompt and the task's longest is refused here (documented)", () => {
    // 1-8 digits, 20 prompts: the chance that none has 8 digits is (7/8)^20 ≈ 7 %; seed 36 draws none.
    const values = { data: { min_digits: 1, max_digits: 8, train_size: 19, val_size: 1, seed: 36, train_batch_size: 4 }, worker: { actor: { max_new_tokens: 9 } } };
    const ds = makeDataset(config(values).data);
    const drawn = Math.max(...[...ds.train, ...ds.val].map((p) => promptTokens(p).length));
    expect(drawn).toBeLessThan(10);
    const context = drawn + 9;
    const withContext = { ...values, worker: { actor: { max_new_tokens: 9, model: { context } }, critic: { model: { context } } } };
    expect(verdict(checkTaskJobConfig, withContext)).toBe("ok");
    expect(verdict(checkJobFits, withContext)).toBe("worker.actor.model.context");
  });
});

describe("the request path draws no prompt", () => {
  /** Counts prompts drawn by any task while `f` runs. */
  async function promptsDrawnDuring<T>(f: () => Promise<T>): Promise<{ value: T; drawn: number }> {
    let drawn = 0;
    const originals = Object.values(TASKS).map((t) => [t, t.makePrompt] as const);
    for (const [task, make] of originals) task.makePrompt = (...args) => (drawn++, make(...args));
    try {
      return { value: await f(), drawn };
    } finally {
      for (const [task, make] of originals) task.makePrompt = make;
    }
  }

  test("the worst body the schema allows is accepted without generating its data set", async () => {
    const app = createApp({ jobs, requireHostHeader: false });
    const blocker = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } })); // the worst job must wait, not run
    const { value: res, drawn } = await promptsDrawnDuring(async () =>
      await app.request("/jobs", { method: "POST", body: JSON.stringify(WORST_BODY), headers: { "Content-Type": "application/json" } }));
    expect(res.status).toBe(202);
    expect(drawn).toBe(0);
    const worst = jobs.get(((await res.json()) as { id: string }).id);
    expect(worst.record.status).toBe("queued");
    jobs.cancel(worst);
    jobs.cancel(blocker);
  });

  test("over a socket, /healthz answers while the worst POST is in flight, and that POST draws no prompt", async () => {
    const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0 });
    const blocker = await jobs.submit(shortJob(100_000, { checkpoint: { interval: 100_000 } }));
    try {
      const order: string[] = [];
      const { value: post, drawn } = await promptsDrawnDuring(async () => {
        // The POST's head and half its body are on the server; /healthz goes in between.
        const body = JSON.stringify(WORST_BODY);
        const posting = await rawHttpInTwoParts(server.port, "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, body.length >> 1)}`);
        const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
        order.push(`healthz ${health.status}`);
        const res = await posting.finish(body.slice(body.length >> 1));
        order.push(`post ${res.status}`);
        return res;
      });
      expect(order).toEqual(["healthz 200", "post 202"]);
      expect(drawn).toBe(0);
      jobs.cancel(jobs.get((JSON.parse(post.body) as { id: string }).id));
    } finally {
      jobs.cancel(blocker);
      await server.stop();
    }
  });
});

describe("jobs on files, over HTTP", () => {
  const refusal = (values: Record<string, unknown>) => {
    try {
      checkJobFits(config(values));
    } catch (e) {
      expect(e).toBeInstanceOf(JobConfigError);
      return e as JobConfigError;
    }
    throw new Error("accepted");
  };

  test("a reward module is refused: it would run code a request names", () => {
    const e = refusal({ reward: { module: "/tmp/anything.ts" } });
    expect(e.path).toBe("reward.module");
    expect(e.message).toContain("use reward.name (math, exact_match), or run the job with `bun run train`");
  });

  test("cluster settings are the operator's: a request that sets any is refused", () => {
    const e = refusal({ cluster: { launcher: "slurm", slurm: { srun_args: ["--uid=0"] } } });
    expect(e.path).toBe("cluster");
    expect(e.message).toContain("leave the cluster section out of the job");
    expect(() => checkJobFits(config({}))).not.toThrow();
  });

  test("files and folders must exist on the coordinator's machine; their contents are read when the job starts", () => {
    const e = refusal({ data: { train_files: "/nonexistent/train.jsonl", val_files: "/nonexistent/val.jsonl" }, reward: { name: "math" } });
    expect([e.path, e.message]).toEqual(["data.train_files", "data.train_files: /nonexistent/train.jsonl does not exist on the coordinator's machine"]);
    expect(refusal({ worker: { actor: { model: { path: "/nonexistent/model" } } } }).path).toBe("worker.actor.model.path");
    const here = import.meta.dir;
    expect(() => checkJobFits(config({ data: { train_files: `${here}/job_check.test.ts`, val_files: `${here}/job_check.test.ts` } }))).not.toThrow();
  });
});
