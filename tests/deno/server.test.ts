/**
 * The coordinator service under Deno: the same Hono app served by Deno.serve (through the
 * runtime adapter) takes a short job over HTTP, streams it over SSE to the end, exports
 * /metrics that promtool accepts, kills and restarts an actor through the chaos route; and
 * `deno task serve` (runtime/service/cli/serve.ts) starts and answers, the dashboard page (its
 * script read from its own file) included; at the socket level, a request
 * without Host gets a 400 problem, silent, slow and idle connections are closed (Deno.serve
 * alone never closes them), and running out of file descriptors (which ends Deno.serve's
 * accept loop for good) does not stop the coordinator. Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import {
  closedByServer, exhaustDescriptors, prlimitPath, promtoolCheck, quietManager, rawHttp, readSse, removeTempDirs, shortJob, startServe, tempDir,
} from "../service/helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const JSON_TYPE = { "Content-Type": "application/json" };

Deno.test("coordinator over HTTP under Deno: submit, SSE to the end, kill an actor, /metrics", opts, async () => {
  assert.equal(runtime.name, "deno");
  const jobs = quietManager(tempDir("deno-server")).start();
  const server = await runtime.serve({ fetch: createApp({ jobs, chaos: true }).fetch, port: 0 });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const res = await fetch(`${base}/jobs`, { method: "POST", body: JSON.stringify(shortJob(20)), headers: JSON_TYPE });
    assert.equal(res.status, 202);
    const { id } = await res.json();
    let kill: Promise<Response> | undefined;
    const events = await readSse(await fetch(`${base}/jobs/${id}/events`), (e) => {
      if (e.event === "step" && e.data.step === 4 && !kill) {
        kill = fetch(`${base}/jobs/${id}/actors/actor_rollout/kill`, { method: "POST", body: '{"signal":"SIGKILL"}', headers: JSON_TYPE });
      }
    });
    assert.equal((await kill!).status, 202);
    assert.deepEqual(events.filter((e) => e.event === "step").map((e) => e.data.step), Array.from({ length: 20 }, (_, i) => i + 1));
    const actorEvents = events.filter((e) => e.event === "actor").map((e) => e.data.event);
    assert.ok(actorEvents.some((e) => e.type === "death" && e.actor === "actor_rollout" && e.signal === "SIGKILL"));
    assert.ok(actorEvents.some((e) => e.type === "restart" && e.actor === "actor_rollout"));
    assert.equal(events.at(-1)!.event, "end");
    assert.equal(events.at(-1)!.data.status, "succeeded");

    const text = await (await fetch(`${base}/metrics`)).text();
    assert.ok(text.includes(`revenant_actor_restarts_total{job_id="${id}",role="actor_rollout"} 1`), text);
    assert.ok(text.includes(`revenant_build_info{runtime="deno"`));
    const check = promtoolCheck(text);
    if (check) assert.equal(check.code, 0, check.output);

    const bad = await fetch(`${base}/jobs`, { method: "POST", body: '{"trainer":{"total_steps":"x"}}', headers: JSON_TYPE });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.problems[0].path, "trainer.total_steps");
  } finally {
    await jobs.close();
    await server.stop();
    removeTempDirs();
  }
});

Deno.test("deno task serve starts the coordinator and stops on SIGTERM", opts, async () => {
  const child = await startServe(["--run-dir", tempDir("deno-serve")]);
  try {
    const health = await (await fetch(`${child.base}/healthz`)).json();
    assert.equal(health.status, "ok");
    assert.equal(health.runtime, "deno");
    assert.equal((await fetch(`${child.base}/jobs`)).status, 200);
    // The dashboard's script is read from its own file at start: Deno finds and inlines it too.
    const page = await (await fetch(`${child.base}/`)).text();
    const script = readFileSync(new URL("../../runtime/service/server/dashboard_client.js", import.meta.url), "utf8");
    assert.ok(page.includes(`<script>${script}</script>`), "GET / inlines dashboard_client.js");
    assert.match(page, /<script id="dashboard-config" type="application\/json">\{"chaos":false,"charts":\[/);
  } finally {
    child.kill("SIGTERM");
    // (Deno's node:child_process reports a null exit code for a child sent a signal, even one
    // that handled it and exited 0; the Bun durability test checks the 0.)
    await child.exited;
    assert.match(child.output(), /SIGTERM: checkpointing running jobs and stopping/);
    removeTempDirs();
  }
});

Deno.test("no Host header: 400 problem; silent, slow and idle connections are closed by the server", opts, async () => {
  const jobs = quietManager(tempDir("deno-conn")).start();
  const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0, idleTimeoutS: 1 });
  try {
    for (const request of ["GET /healthz HTTP/1.0\r\n\r\n", "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"]) {
      const res = await rawHttp(server.port, request);
      assert.equal(res.status, 400);
      assert.equal(JSON.parse(res.body).error.code, "missing_host");
    }
    const [silent, partial, keepAlive] = await Promise.all([
      closedByServer(server.port, ""),
      closedByServer(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
      closedByServer(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ]);
    assert.equal(silent, "");
    assert.equal(partial, "");
    assert.match(keepAlive, /^HTTP\/1\.1 200/);
  } finally {
    await jobs.close();
    await server.stop();
    removeTempDirs();
  }
});

Deno.test({ name: "out of file descriptors: deno task serve survives a connection flood and answers after it", ...opts, ignore: !prlimitPath() }, async () => {
  const coordinator = await startServe(["--run-dir", tempDir("deno-emfile"), "--quiet"]);
  try {
    const health = await exhaustDescriptors(coordinator, prlimitPath()!);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");
  } finally {
    coordinator.kill("SIGTERM");
    await coordinator.exited;
    removeTempDirs();
  }
});
