/**
 * The coordinator's HTTP server at the socket level (Bun; tests/deno/server.test.ts runs the same
 * checks under Deno): a request without a Host header gets a 400 problem, never the runtime's
 * debug page; silent, slow and idle connections are closed by the server (idle timeout); and a
 * coordinator run out of file descriptors by a flood of connections keeps running and answers
 * once they close.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { createApp } from "../../runtime/service/server/app.ts";
import { closedByServer, exhaustDescriptors, prlimitPath, quietManager, rawHttp, startServe, tempDir } from "./helpers.ts";

const dirs: string[] = [];
const dir = (tag: string) => {
  const d = tempDir(tag);
  dirs.push(d);
  return d;
};
const jobs = quietManager(dir("conn")).start();
// The smallest idle timeout, so the test waits as little as the runtime allows.
const server = await runtime.serve({ fetch: createApp({ jobs }).fetch, port: 0, idleTimeoutS: 1 });
afterAll(async () => {
  await jobs.close();
  await server.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe(`HTTP server edges (${runtime.name})`, () => {
  test("no Host header: 400 with a problem body (HTTP/1.0 reaches the app; HTTP/1.1 is refused by the runtime or the app)", async () => {
    const old = await rawHttp(server.port, "GET /healthz HTTP/1.0\r\n\r\n");
    expect(old.status).toBe(400);
    expect(JSON.parse(old.body)).toMatchObject({ error: { status: 400, code: "missing_host", problems: [{ path: "(header) Host" }] } });
    const empty = await rawHttp(server.port, "GET /jobs HTTP/1.0\r\nHost: \r\n\r\n");
    expect(JSON.parse(empty.body).error.code).toBe("missing_host");

    // Bun answers an HTTP/1.1 request without Host itself (400, no body) before the app sees it.
    const v11 = await rawHttp(server.port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    expect(v11.status).toBe(400);
    expect(v11.body).not.toMatch(/<html|<!doctype|<script/i);
    if (v11.body) expect(JSON.parse(v11.body).error.code).toBe("missing_host");

    // With a Host it is an ordinary request.
    const ok = await rawHttp(server.port, "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    expect(ok.status).toBe(200);
  });

  test("the server closes connections that stay silent, send headers too slowly, or idle after a response", async () => {
    const [silent, partial, keepAlive] = await Promise.all([
      closedByServer(server.port, ""),
      closedByServer(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
      closedByServer(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ]);
    expect(silent).toBe("");
    expect(partial).toBe("");
    expect(keepAlive).toStartWith("HTTP/1.1 200");
  }, 60_000);
});

test.skipIf(!prlimitPath())("out of file descriptors: the coordinator survives a connection flood and answers after it", async () => {
  const coordinator = await startServe(["--run-dir", dir("emfile"), "--quiet"]);
  try {
    const health = await exhaustDescriptors(coordinator, prlimitPath()!);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe("ok");
  } finally {
    coordinator.kill("SIGTERM");
    expect(await coordinator.exited).toBe(0);
  }
}, 120_000);
