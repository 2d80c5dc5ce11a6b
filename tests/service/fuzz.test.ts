/**
 * Fuzzing the real server: thousands of seeded malformed, oversized and wrong-typed requests
 * (bad JSON, wrong types at every configuration key, unknown keys, prototype keys, bodies over
 * the limit, wrong content types, invalid UTF-8, junk paths, methods and queries, bad kill
 * bodies). Every answer must be a 4xx with a JSON error body, no job may be created, the
 * server must stay up, and a valid job submitted afterwards must run to the end.
 * FUZZ_SEED=<n> reproduces a run.
 */
import { expect, test } from "bun:test";
import { configJsonSchema, resolveConfig } from "../../config/index.ts";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { Rng } from "../../runtime/core/rng.ts";
import { quietManager, readSse, shortJob, tempDir } from "./helpers.ts";
import { serveTestApp } from "./serve_app.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 2026);
const REQUESTS = 3000;
const { jobs, base } = await serveTestApp(tempDir("fuzz"));

/** Every leaf of the default configuration, with its default value (for its type). */
function leaves(obj: Record<string, unknown>, path: string[] = []): Array<[string[], unknown]> {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? leaves(v as Record<string, unknown>, [...path, k]) : [[[...path, k], v] as [string[], unknown]]);
}
const LEAVES = leaves(resolveConfig({ file: null, env: {} }).config as unknown as Record<string, unknown>).filter(([p]) => p.join(".") !== "trainer.run_dir");
/** A leaf's JSON schema: tells a choice (enum) from free text, which takes any string. */
const SCHEMA = configJsonSchema() as unknown as { properties?: Record<string, unknown> };
function leafSchema(path: string[]): { enum?: unknown[] } {
  let node = SCHEMA as { properties?: Record<string, unknown> } | undefined;
  for (const k of path) node = node?.properties?.[k] as typeof node;
  return (node ?? {}) as { enum?: unknown[] };
}

interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Sets an own property (even `__proto__`, which plain assignment would turn into a prototype). */
function setPath(obj: Record<string, any>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) cur = cur[k] ??= {};
  Object.defineProperty(cur, path.at(-1)!, { value, enumerable: true, configurable: true, writable: true });
}

/** A value of the wrong type (or out of range) for a leaf whose default is `dflt` (`choice`: an enum, so a stray string is wrong too). */
function wrongValue(rng: Rng, dflt: unknown, choice: boolean): unknown {
  const strings = ["", "x", "../../etc/passwd", "rm -rf /", "1e9999", "NaN", "<script>alert(1)</script>", "\u0000", "é".repeat(50)];
  const others: unknown[] = [null, [], [1, "a"], {}, { nested: true }, rng.pick(strings)];
  if (typeof dflt === "number") return rng.pick([...others, true, false, -5, -1e12, "12"]);
  if (typeof dflt === "boolean") return rng.pick([...others, 0, 1, -5, "true", "yes"]);
  if (typeof dflt === "string") return choice ? rng.pick([...others, 7, true, "not_a_choice", "CPU", "Digit_Reversal"]) : rng.pick([null, [], {}, 7, true]);
  return rng.pick([null, 5, "console", { a: 1 }, ["console", "stdout"], [7]]); // arrays (trainer.logger)
}

const JSON_TYPE = { "Content-Type": "application/json" };

function makeRequest(rng: Rng): FuzzRequest {
  const valid = shortJob(4);
  switch (rng.int(12)) {
    case 0: case 1: case 2: { // wrong type at one or more keys, perhaps with an unknown key
      const body = structuredClone(valid) as Record<string, any>;
      for (let n = 1 + rng.int(3); n > 0; n--) {
        const [path, dflt] = rng.pick(LEAVES);
        setPath(body, path, wrongValue(rng, dflt, leafSchema(path).enum !== undefined));
      }
      return { kind: "wrong-type", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify(body) };
    }
    case 3: { // unknown or dangerous keys
      const body = structuredClone(valid) as Record<string, any>;
      const section = rng.pick(["", "trainer", "data", "worker.actor", "worker.actor.model", "fault_tolerance"]);
      const key = rng.pick(["bogus", "__proto__", "constructor", "prototype", "run_dir", "module", "command", "path", "Total_Steps"]);
      setPath(body, section ? [...section.split("."), key] : [key], { x: 1 });
      return { kind: "unknown-key", method: "POST", path: "/jobs", headers: JSON_TYPE, body: JSON.stringify(body) };
    }
    case 4: { // malformed JSON: truncated, corrupted, or not JSON
      const text = JSON.stringify(valid);
      const variants = [text.slice(0, rng.int(text.length)), text.replace(/[:,]/, rng.pick(["", ";", "::"])), "{", "}", "[", "'a'", "undefined", "{\"a\":}", "\u0000", "1".repeat(400) + "e99999"];
      const pick = rng.pick(variants);
      return { kind: "malformed", method: "POST", path: "/jobs", headers: JSON_TYPE, body: pick === "" ? "{" : pick };
    }
    case 5: { // oversized: padded JSON, or a deep array
      const size = 64 * 1024 + 1 + rng.int(200_000);
      const body = rng.int(2) ? JSON.stringify({ ...valid, pad: "x".repeat(size) }) : "[".repeat(size);
      return { kind: "oversized", method: "POST", path: rng.pick(["/jobs", "/jobs/x/actors/critic/kill"]), headers: JSON_TYPE, body };
    }
    case 6: { // wrong content type
      const type = rng.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json", ""]);
      return { kind: "content-type", method: "POST", path: "/jobs", headers: type ? { "Content-Type": type } : {}, body: JSON.stringify(valid) };
    }
    case 7: { // not a JSON object, or invalid UTF-8
      const bodies: Array<string | Uint8Array> = ["null", "0", "\"job\"", "[]", "true", "[{}]", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), new Uint8Array([0xc3, 0x28])];
      return { kind: "not-object", method: "POST", path: "/jobs", headers: JSON_TYPE, body: rng.pick(bodies) };
    }
    case 8: { // junk paths and ids
      // (Not "." or "..": fetch normalizes those away before the request leaves.)
      const junk = ["...", "..%2F..%2Fetc%2Fpasswd", "%00", "%E0%A4%A", "a".repeat(3000), "digit_reversal-20200101-000000-deadbeef", "%2e%2e%2f", "x y", "😀", "-1"];
      const path = rng.pick([`/jobs/${rng.pick(junk)}`, `/jobs/${rng.pick(junk)}/metrics`, `/jobs/${rng.pick(junk)}/events`, `/${rng.pick(junk)}`, `/jobs/${rng.pick(junk)}/actors/${rng.pick(junk)}/kill`]);
      const method = path.endsWith("/kill") ? "POST" : rng.pick(["GET", "DELETE"]);
      return { kind: "junk-path", method, path, headers: JSON_TYPE, body: method === "POST" ? "{}" : undefined };
    }
    case 9: { // methods no route has
      const method = rng.pick(["PUT", "PATCH", "DELETE", "POST"]);
      const path = method === "DELETE" ? rng.pick(["/jobs", "/metrics", "/healthz"]) : method === "POST" ? rng.pick(["/metrics", "/healthz", "/", "/openapi.json", "/jobs/x"]) : rng.pick(["/jobs", "/", "/metrics"]);
      return { kind: "method", method, path, headers: JSON_TYPE, body: method === "DELETE" ? undefined : "{}" };
    }
    case 10: { // bad queries
      const q = rng.pick(["since=-1", "since=abc", "since=1.5", "bogus=1", "since=1&since=2x", "since=" + "9".repeat(400)]);
      return { kind: "query", method: "GET", path: `/jobs/digit_reversal-20200101-000000-deadbeef/metrics?${q}`, headers: {} };
    }
    default: { // bad kill bodies on an unknown job
      const body = rng.pick(["{\"signal\":\"SIGTERM\"}", "{\"signal\":9}", "{\"signal\":\"SIGKILL\",\"x\":1}", "[]", "\"SIGKILL\"", "{"]);
      return { kind: "kill-body", method: "POST", path: `/jobs/${rng.pick(["nope", "digit_reversal-20200101-000000-deadbeef"])}/actors/critic/kill`, headers: JSON_TYPE, body };
    }
  }
}

test(`${REQUESTS} malformed, oversized and wrong-typed requests get only 4xx; the server stays up (seed ${SEED})`, async () => {
  const rng = new Rng(SEED);
  const seen = new Map<string, Map<number, number>>();
  const offenders: string[] = [];
  for (let sent = 0; sent < REQUESTS; sent += 50) {
    const batch = Array.from({ length: 50 }, () => makeRequest(rng));
    await Promise.all(batch.map(async (r) => {
      const res = await fetch(base + r.path, { method: r.method, headers: r.headers, body: r.body });
      const text = await res.text();
      const byStatus = seen.get(r.kind) ?? new Map<number, number>();
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
      seen.set(r.kind, byStatus);
      let jsonError = false;
      try {
        jsonError = typeof JSON.parse(text).error?.code === "string";
      } catch {
        // not JSON
      }
      if (res.status < 400 || res.status >= 500 || !jsonError) {
        offenders.push(`${res.status} ${r.kind} ${r.method} ${r.path.slice(0, 80)} ${typeof r.body === "string" ? r.body.slice(0, 120) : ""} → ${text.slice(0, 200)}`);
      }
    }));
  }
  console.log(`fuzz seed ${SEED}: ${[...seen].map(([k, m]) => `${k} ${[...m].map(([s, n]) => `${s}×${n}`).join(",")}`).join("; ")}`);
  if (offenders.length) console.error(`fuzz failures (reproduce with FUZZ_SEED=${SEED}):\n${offenders.slice(0, 20).join("\n")}`);
  expect(offenders).toEqual([]);
  expect(jobs.size).toBe(0);
  expect(({} as Record<string, unknown>).x).toBeUndefined();
  expect((await fetch(`${base}/healthz`)).status).toBe(200);

  const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(shortJob(4)), headers: JSON_TYPE });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const events = await readSse(await fetch(`${base}/jobs/${id}/events`));
  expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "succeeded", step: 4 } });
}, 120_000);
