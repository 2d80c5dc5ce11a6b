/**
 * A request names files only inside the operator's folders (`serve --data-root`, `--model-root`)
 * and no URL at all: outside paths, `..` and symlink escapes, and the MLflow address are refused
 * with 400, naming the key and the roots, and never saying whether an outside file exists or what
 * it holds.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../runtime/service/server/app.ts";
import { InvalidConfig } from "../../runtime/service/server/job_errors.ts";
import { parseJobConfig, type RequestPolicy } from "../../runtime/service/server/job_request.ts";
import { requestRoots } from "../../runtime/service/server/request_paths.ts";
import { quietManager, removeTempDirs, tempDir } from "./helpers.ts";

afterAll(removeTempDirs);

const served = tempDir("served");
const dataRoot = join(served, "data");
const modelRoot = join(served, "models");
const outside = tempDir("outside");
mkdirSync(dataRoot);
mkdirSync(join(modelRoot, "tiny"), { recursive: true });
writeFileSync(join(modelRoot, "tiny", "config.json"), "{}");
writeFileSync(join(dataRoot, "train.jsonl"), '{"prompt": "1+1=", "answer": "2"}\n');
writeFileSync(join(outside, "secret.json"), '[{"prompt": "secret-word", "answer": "x"}]');
symlinkSync(join(outside, "secret.json"), join(dataRoot, "link.json"));
symlinkSync(outside, join(dataRoot, "linked-folder"));

const roots = requestRoots({ dataRoots: [dataRoot], modelRoots: [modelRoot] });
const policy = { roots, mlflowTrackingUri: "http://mlflow.internal:5000" };
const runDir = tempDir("paths-run");

/** The problem InvalidConfig reports for `body`, or undefined when it is accepted. */
function refusal(body: Record<string, unknown>, where: RequestPolicy = policy): { path: string; message: string } | undefined {
  try {
    parseJobConfig(body, runDir, where);
    return undefined;
  } catch (e) {
    if (!(e instanceof InvalidConfig)) throw e;
    const p = e.problems![0]!;
    return { path: p.path, message: p.message };
  }
}
const files = (train: string, extra: Record<string, unknown> = {}) => ({ data: { train_files: [train], val_files: ["train.jsonl"], tokenizer: "tiny", ...extra }, reward: { name: "math" } });

describe("paths in a request", () => {
  test("a relative path resolves inside a root; an absolute one inside a root is kept; both become real paths", () => {
    expect(refusal(files("train.jsonl"))).toBeUndefined();
    const config = parseJobConfig(files(join(dataRoot, "train.jsonl")), runDir, policy);
    expect(config.data.train_files).toEqual([join(roots.data[0]!, "train.jsonl")]);
    expect(config.data.val_files).toEqual([join(roots.data[0]!, "train.jsonl")]);
    expect(config.data.tokenizer).toBe(join(roots.model[0]!, "tiny"));
  });

  test("an outside file is refused the same way whether it exists or not, and its content never shows", () => {
    const existing = refusal(files("/etc/passwd"))!;
    const missing = refusal(files("/root/.ssh/id_rsa_that_is_not_there"))!;
    expect(existing.path).toBe("data.train_files");
    expect(existing.message).toContain("is not inside the folders this coordinator serves (--data-root: ");
    expect(existing.message).toContain(roots.data[0]!);
    expect(missing.message.replace("/root/.ssh/id_rsa_that_is_not_there", "X")).toBe(existing.message.replace("/etc/passwd", "X"));
    const secret = refusal(files(join(outside, "secret.json")))!;
    expect(secret.message).not.toContain("secret-word");
    expect(secret.message).not.toContain("does not exist");
  });

  test("`..` and symlinks cannot lead out of a root", () => {
    for (const escape of ["../outside.jsonl", `../../${outside.split("/").pop()}/secret.json`, "link.json", "linked-folder/secret.json", `${dataRoot}/../../etc/passwd`]) {
      const e = refusal(files(escape));
      expect({ escape, path: e?.path, refused: e?.message.includes("is not inside") }).toEqual({ escape, path: "data.train_files", refused: true });
    }
  });

  test("a model folder must be under --model-root: `/` (and its config.json) is refused", () => {
    const e = refusal({ worker: { actor: { model: { path: "/" } } } })!;
    expect(e.path).toBe("worker.actor.model.path");
    expect(e.message).toContain("--model-root");
    expect(refusal({ worker: { actor: { model: { path: join(dataRoot) } } } })?.path).toBe("worker.actor.model.path");
  });

  test("a missing file inside a root is named as missing there", () => {
    expect(refusal(files("nope.jsonl"))?.message).toBe(`data.train_files: "nope.jsonl" does not exist in the folders this coordinator serves (--data-root: ${roots.data[0]})`);
  });

  test("with no roots, any path is refused, naming the flag that would allow it", () => {
    const none = { roots: requestRoots({}) };
    const e = refusal(files("train.jsonl"), none)!;
    expect(e.path).toBe("data.train_files");
    expect(e.message).toContain("takes no paths in requests (it was started without --data-root)");
    expect(refusal({ worker: { critic: { model: { path: "/tmp" } } } }, none)?.path).toBe("worker.critic.model.path");
    expect(refusal({}, none)).toBeUndefined();
  });

  test("the MLflow address is the operator's: a request that sets it is refused, and jobs get the operator's", () => {
    const e = refusal({ trainer: { logger: ["mlflow"], mlflow_tracking_uri: "http://127.0.0.1:18999/" } })!;
    expect(e.path).toBe("trainer.mlflow_tracking_uri");
    expect(e.message).toContain("serve --mlflow-tracking-uri");
    expect(parseJobConfig({ trainer: { logger: ["mlflow"] } }, runDir, policy).trainer.mlflow_tracking_uri).toBe("http://mlflow.internal:5000");
  });

  test("roots must be existing folders", () => {
    expect(() => requestRoots({ dataRoots: [join(served, "missing")] })).toThrow("--data-root");
    expect(() => requestRoots({ modelRoots: [join(dataRoot, "train.jsonl")] })).toThrow("not a folder");
  });

  test("over HTTP: 400 naming the key, and no job folder made", async () => {
    const jobs = quietManager(tempDir("paths-http"), 1, { dataRoots: [dataRoot], modelRoots: [modelRoot] }).start();
    const app = createApp({ jobs, requireHostHeader: false });
    try {
      const res = await app.request("/jobs", { method: "POST", body: JSON.stringify({ data: { train_files: "/etc/passwd", val_files: "/etc/passwd" } }), headers: { "Content-Type": "application/json" } });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { problems: Array<{ path: string }> } };
      expect(body.error.problems[0]!.path).toBe("data.train_files");
      expect(jobs.list()).toHaveLength(0);
    } finally {
      await jobs.close();
    }
  });
});
