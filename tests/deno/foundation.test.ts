/**
 * The Deno suite: the same runtime works under Deno — configuration, the native addon,
 * and spawning a child of this runtime that talks back over a Unix socket.
 * Run with `deno test -A tests/deno/`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, FaultToleranceConfig, PPOConfig, resolveConfig } from "../../config/index.ts";
import { loadNative } from "../../native/loader.ts";
import { runtime } from "../../runtime/core/adapter/index.ts";
import { tempDir } from "../helpers/tmp.ts";

Deno.test("config: defaults, precedence and errors", () => {
  const { config } = resolveConfig({ env: { VERL_MAX_RESTARTS: "7" }, args: ["fault_tolerance.max_task_retries=-1"] });
  assert.equal(config.fault_tolerance.max_restarts, 7);
  assert.equal(config.fault_tolerance.max_task_retries, -1);
  assert.equal(config.fault_tolerance.health_check_interval, 30);
  assert.throws(() => resolveConfig({ file: null, env: { VERL_MAX_RESTARTS: "abc" } }), (e: unknown) =>
    e instanceof ConfigError && e.message.includes(`fault_tolerance.max_restarts = "abc" (env VERL_MAX_RESTARTS): expected an integer ≥ -1`));
  const c = new PPOConfig();
  c.fault_tolerance = new FaultToleranceConfig({ max_restarts: 5 });
  assert.equal(c.validate().fault_tolerance.max_task_retries, 2);
});

Deno.test("native addon loads and reports its devices", () => {
  const info = loadNative().deviceInfo();
  assert.equal(info.backends[0], "cpu");
  assert.ok(info.threads >= 1);
  if (!info.cuda.usable) {
    assert.ok((info.cuda.reason ?? "").length > 0);
    console.log(`[no GPU] ${info.cuda.reason}`);
  }
});

Deno.test("runtime adapter spawns a Deno child that talks back over a Unix socket", async () => {
  assert.equal(runtime.name, "deno");
  const path = join(tempDir("revenant-deno-"), "s.sock");
  let got = "";
  let resolveLine!: () => void;
  const line = new Promise<void>((r) => (resolveLine = r));
  const server = await runtime.listenUnix(path, (conn) => {
    conn.write(new TextEncoder().encode("hi"));
    return { data: (b) => { got += new TextDecoder().decode(b); resolveLine(); }, close() {} };
  });
  const child = runtime.spawn({
    module: join(import.meta.dirname!, "..", "fixtures", "echo_child.ts"),
    args: [path, "3"],
    env: { ...Deno.env.toObject(), ECHO_VALUE: "d" },
  });
  const [out, , status] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited, line]);
  server.close();
  assert.equal(out.trim(), "child deno d");
  assert.equal(got, "echo:hi");
  assert.deepEqual(status, { code: 3, signal: null });
});
