/** The runtime adapter: spawning a child of this runtime, Unix sockets, HTTP. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runtime, type Conn } from "../../runtime/core/adapter/index.ts";
import { tempDir } from "../helpers/tmp.ts";

const CHILD = join(import.meta.dir, "..", "fixtures", "echo_child.ts");

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

describe(`runtime adapter (${runtime.name})`, () => {
  test("is detected by feature", () => {
    expect(runtime.name).toBe(typeof (globalThis as { Bun?: unknown }).Bun === "object" ? "bun" : "deno");
  });

  test("spawns a child of the same runtime, which talks back over a Unix socket", async () => {
    const dir = tempDir("revenant-adapter-");
    const path = join(dir, "s.sock");
    const received: string[] = [];
    let gotLine!: () => void;
    const done = new Promise<void>((r) => (gotLine = r));
    const server = await runtime.listenUnix(path, (conn: Conn) => {
      conn.write(new TextEncoder().encode("hello"));
      return { data: (b) => { received.push(new TextDecoder().decode(b)); gotLine(); }, close() {} };
    });
    const child = runtime.spawn({ module: CHILD, args: [path, "7"], env: { ...process.env as Record<string, string>, ECHO_VALUE: "v1" } });
    expect(child.pid).toBeGreaterThan(0);
    const [out, err, status] = await Promise.all([readAll(child.stdout), readAll(child.stderr), child.exited, done]);
    server.close();
    expect(out.trim()).toBe(`child ${runtime.name} v1`);
    expect(err.trim()).toBe("to stderr");
    expect(received.join("")).toBe("echo:hello");
    expect(status).toEqual({ code: 7, signal: null });
  });

  test("reports the signal that killed a child", async () => {
    const child = runtime.spawn({ module: CHILD, args: ["/nonexistent/socket", "0"] , env: { ...process.env as Record<string, string> } });
    child.kill("SIGKILL");
    const status = await child.exited;
    expect(status).toEqual({ code: null, signal: "SIGKILL" });
  });

  test("large writes arrive whole and in order", async () => {
    const dir = tempDir("revenant-adapter-");
    const path = join(dir, "big.sock");
    const total = 8 << 20;
    const payload = new Uint8Array(total);
    for (let i = 0; i < total; i++) payload[i] = (i * 31 + 7) & 0xff;
    let got = 0;
    let ok = true;
    let finished!: () => void;
    const done = new Promise<void>((r) => (finished = r));
    const server = await runtime.listenUnix(path, () => ({
      data(b) {
        for (let i = 0; i < b.length; i++) if (b[i] !== payload[got + i]) ok = false;
        got += b.length;
        if (got >= total) finished();
      },
      close() {},
    }));
    const client = await runtime.connectUnix(path, { data() {}, close() {} });
    for (let off = 0; off < total; off += 1 << 20) client.write(payload.subarray(off, off + (1 << 20)));
    await done;
    client.close();
    server.close();
    expect(got).toBe(total);
    expect(ok).toBe(true);
  });

  test("serves HTTP on loopback", async () => {
    const server = await runtime.serve({ fetch: () => new Response("pong"), hostname: "127.0.0.1", port: 0 });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/`);
      expect(await res.text()).toBe("pong");
    } finally {
      await server.stop();
    }
  });
});
