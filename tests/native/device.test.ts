/**
 * Devices: which strings a role's `device` accepts (config, PolicyModel and the native
 * constructor refuse the same ones), `cuda`/`cuda:N` failing loudly when the device cannot be
 * used, `auto` falling back to the CPU and saying why (model, role, banner), the driver the CUDA
 * runtime needs (`deviceInfo().cuda.driverRequired`), and a lost device (a sticky CUDA error)
 * ending the actor's process so that its supervisor restarts it.
 *
 * Written for both kinds of machine: where CUDA is usable the GPU side of each check runs, where
 * it is not the refusal and fallback side does.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError, resolveConfig } from "../../config/index.ts";
import { DEVICE_ALLOWED, deviceProblem, parseDevice } from "../../native/device.ts";
import { cudaVersionText, formatDeviceInfo } from "../../native/device_report.ts";
import { loadNative } from "../../native/loader.ts";
import { InvalidArgumentError, NativeComputeError, PolicyModel } from "../../native/policy_model.ts";
import type { DeviceInfo } from "../../native/types.ts";
import { ModelRole } from "../../roles/model_role.ts";
import { EXIT } from "../../runtime/core/host/role.ts";
import { ActorDiedError } from "../../runtime/core/supervisor/errors.ts";
import { deviceBanner } from "../../runtime/service/cli/train.ts";
import { deviceRoles } from "../fixtures/device_roles.ts";
import { caught, harness } from "../helpers/harness.ts";
import { SMALL } from "./helpers.ts";

const info = loadNative().deviceInfo();
const cuda = info.cuda;
if (!cuda.usable) console.log(`[no GPU] ${cuda.reason}`);

/** Strings that are not devices, each for a different reason. */
const BAD = ["gpu", "CUDA", "cuda:", "cuda:-1", "cuda:01", "cuda: 1", "cuda:1.5", "cuda:x", "cuda:0 ", "cuda1", "cpu:0", ""];
const GOOD = ["auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:12", "null"];

describe("device strings", () => {
  test("parseDevice takes apart every accepted form and nothing else", () => {
    expect(parseDevice("cuda")).toEqual({ kind: "cuda", index: 0 });
    expect(parseDevice("cuda:12")).toEqual({ kind: "cuda", index: 12 });
    expect(parseDevice("auto")).toEqual({ kind: "auto" });
    for (const d of GOOD) expect(deviceProblem(d)).toBeUndefined();
    for (const d of [...BAD, "cuda:1000000000", 0, null]) expect(parseDevice(d)).toBeUndefined();
  });

  test("the configuration refuses a bad device for every role, quoting it and listing what is allowed", () => {
    for (const bad of BAD) {
      let error: unknown;
      try {
        resolveConfig({ file: null, env: {}, args: [`worker.actor.device=${bad}`, `worker.ref.device=${bad}`] });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      expect(problems.map((p) => p.path).sort()).toEqual(["worker.actor.device", "worker.ref.device"]);
      for (const p of problems) expect(p.message).toBe(`expected ${DEVICE_ALLOWED}, got ${JSON.stringify(bad)}`);
    }
  });

  test("the configuration accepts every device form, cuda:N included", () => {
    for (const good of GOOD) {
      const { config } = resolveConfig({ file: null, env: {}, args: [`worker.critic.device=${good}`] });
      expect(config.worker.critic.device).toBe(good as never);
    }
    expect(resolveConfig({ file: null, env: {} }).config.worker.actor.device).toBe("auto");
  });

  test("PolicyModel refuses a bad device before loading anything, listing what is allowed", () => {
    for (const bad of BAD) {
      const e = (() => {
        try {
          new PolicyModel(SMALL, { device: bad as never });
        } catch (err) {
          return err as Error;
        }
        throw new Error(`device ${JSON.stringify(bad)} was accepted`);
      })();
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toContain(DEVICE_ALLOWED);
    }
  });

  test("the native constructor refuses a bad device itself, naming it and what is allowed", () => {
    const addon = loadNative();
    for (const bad of ["gpu", "cuda:01", "cuda:-1", "null"]) {
      expect(() => new addon.PolicyModelNative({ ...SMALL, valueHead: false, seed: 5 }, bad))
        .toThrow(`device must be "auto", "cpu", "cuda" or "cuda:N" (N a device index: 0, 1, ...), got "${bad}"`);
    }
  });
});

describe("cuda and cuda:N", () => {
  test.skipIf(cuda.usable)("fail loudly without a usable device, with deviceInfo's reason; only auto falls back", () => {
    for (const device of ["cuda", "cuda:0", "cuda:1"] as const) {
      let error: unknown;
      try {
        new PolicyModel(SMALL, { device });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(NativeComputeError);
      const message = (error as Error).message;
      expect(message).toContain(`device "${device}" requested but CUDA is not usable: `);
      expect(message).toContain(cuda.reason!);
      expect(message).toContain('use device "auto" or "cpu"');
    }
  });

  test.skipIf(!cuda.usable)("cuda and cuda:0 run on device 0; cuda:<device count> is refused naming the index and the count", () => {
    for (const device of ["cuda", "cuda:0"] as const) {
      const m = new PolicyModel(SMALL, { device });
      expect([m.backend, m.device, m.fallback]).toEqual(["cuda", "cuda:0", null]);
      void m.dispose();
    }
    const last = `cuda:${cuda.deviceCount - 1}` as const;
    expect(new PolicyModel(SMALL, { device: last }).device).toBe(last);
    const past = `cuda:${cuda.deviceCount}` as const;
    expect(() => new PolicyModel(SMALL, { device: past }))
      .toThrow(`device index ${cuda.deviceCount} is not below the device count ${cuda.deviceCount}`);
  });

  test.skipIf(!cuda.usable)("every device computes what device 0 computes (models on different devices, used from worker threads)", async () => {
    const b = { tokens: Int32Array.from({ length: 24 }, (_, i) => (i * 5) % SMALL.vocab), mask: new Float32Array(24).fill(1), batch: 2, seqLen: 12 };
    const first = await new PolicyModel(SMALL, { device: "cuda:0" }).logprobs(b);
    for (let n = 1; n < cuda.deviceCount; n++) {
      const m = new PolicyModel(SMALL, { device: `cuda:${n}` });
      expect(m.device).toBe(`cuda:${n}`);
      // Same kernels, same inputs, fixed reduction order: the same bits on every device of one model.
      expect(await m.logprobs(b)).toEqual(first);
      const g = await m.generate([[1, 2]], { maxNewTokens: 4, seed: 3 });
      expect(g.tokens.length).toBe(4);
    }
  });
});

describe("auto", () => {
  test("falls back to the CPU only when CUDA is not usable, and says why (model and role)", () => {
    const m = new PolicyModel(SMALL, { device: "auto" });
    if (cuda.usable) {
      expect([m.backend, m.device, m.fallback]).toEqual(["cuda", "cuda:0", null]);
    } else {
      expect([m.backend, m.device, m.fallback]).toEqual(["cpu", "cpu", cuda.reason]);
    }
    void m.dispose();
    const role = new ModelRole({ model: { ...SMALL, seed: 5 }, device: "auto", threads: 1 }, false);
    expect(role.info()).toMatchObject({ backend: m.backend, device: m.device, fallback: m.fallback });
    expect(role.health()).toMatchObject({ ok: true, backend: m.backend, device: m.device, fallback: m.fallback });
  });

  test("cpu is chosen, not fallen back to", () => {
    const m = new PolicyModel(SMALL, { device: "cpu" });
    expect([m.backend, m.device, m.fallback]).toEqual(["cpu", "cpu", null]);
    void m.dispose();
  });

  test("the training banner names each role's device and, when auto falls back, the reason", () => {
    const reason = "no device: no CUDA driver is installed (libcuda not found); cudaErrorInsufficientDriver: ...";
    const noGpu = fakeInfo({ usable: false, reason });
    const { config } = resolveConfig({ file: null, env: {}, args: ["worker.critic.device=cpu", "worker.ref.device=cuda:1"] });
    const text = deviceBanner(config, noGpu);
    expect(text.split("\n")[0]).toBe("device: actor_rollout cpu (auto), critic cpu, ref_policy cuda:1");
    expect(text.split("\n")[1]).toBe(`device fallback: actor_rollout on the CPU (auto): ${reason}`);
    const gpu = deviceBanner(config, fakeInfo({ usable: true, reason: null }));
    expect(gpu.split("\n")[0]).toBe("device: actor_rollout cuda (auto), critic cpu, ref_policy cuda:1");
    expect(gpu).not.toContain("fallback");
  });
});

/** A DeviceInfo with CUDA compiled in (13.0) and the given state. */
function fakeInfo(c: { usable: boolean; reason: string | null; driverVersion?: number }): DeviceInfo {
  const device = c.usable ? { name: "Test GPU", totalMemory: 2 ** 34, freeMemory: 2 ** 33, computeCapability: "9.0" } : null;
  return {
    backends: ["cpu", "cuda"],
    cuda: { compiled: true, usable: c.usable, reason: c.reason, deviceCount: c.usable ? 2 : 0, driverVersion: c.driverVersion ?? (c.usable ? 13000 : 0), runtimeVersion: 13000, driverRequired: 13000, device },
    blas: { linked: false, vendor: "none", config: "built-in", threads: 0 },
    threads: 2,
    hardwareThreads: 2,
  };
}

describe("deviceInfo: the driver the CUDA runtime needs", () => {
  test("driverRequired is the runtime's own version when CUDA is compiled in, 0 otherwise, and consistent with usable", () => {
    expect(typeof cuda.driverRequired).toBe("number");
    if (!cuda.compiled) {
      expect(cuda.driverRequired).toBe(0);
      return;
    }
    // A statically linked runtime reports the version it was built as: CUDART_VERSION.
    expect(cuda.driverRequired).toBe(cuda.runtimeVersion);
    expect(cuda.driverRequired).toBeGreaterThanOrEqual(11000);
    if (cuda.usable) expect(cuda.driverVersion).toBeGreaterThanOrEqual(cuda.driverRequired);
    if (cuda.driverVersion > 0 && cuda.driverVersion < cuda.driverRequired) {
      expect(cuda.usable).toBe(false);
      expect(cuda.reason).toContain(`supports CUDA ${cudaVersionText(cuda.driverVersion)} (${cuda.driverVersion})`);
      expect(cuda.reason).toContain(`built with CUDA ${cudaVersionText(cuda.driverRequired)} (${cuda.driverRequired})`);
    }
    expect(formatDeviceInfo(info)).toContain(`needs ≥ ${cudaVersionText(cuda.driverRequired)}`);
  });

  test("the report shows the driver installed, the one needed, and why CUDA is not usable", () => {
    expect(cudaVersionText(13000)).toBe("13.0");
    expect(cudaVersionText(12040)).toBe("12.4");
    const old = "the installed CUDA driver supports CUDA 12.4 (12040) but this addon was built with CUDA 13.0 (13000) and needs a driver at least that new";
    const line = formatDeviceInfo(fakeInfo({ usable: false, reason: old, driverVersion: 12040 })).split("\n")[1]!;
    expect(line).toBe(`cuda:     compiled, not usable (${old}) (driver 12.4, needs ≥ 13.0)`);
    const ok = formatDeviceInfo(fakeInfo({ usable: true, reason: null })).split("\n")[1]!;
    expect(ok).toBe("cuda:     compiled, device Test GPU (compute 9.0, 16.0 GiB, 8.0 GiB free; 2 devices; driver 13.0, needs ≥ 13.0)");
  });
});

describe("a lost device (sticky CUDA error) ends the process", () => {
  const policyModel = join(import.meta.dir, "..", "..", "native", "policy_model.ts");

  /** Runs a process whose model on `device` loses its device; its exit status and output. */
  async function loseDevice(device: string) {
    const script = `
      const { PolicyModel } = await import(${JSON.stringify(policyModel)});
      const m = new PolicyModel(${JSON.stringify(SMALL)}, { device: ${JSON.stringify(device)}, threads: 1 });
      m.__testDeviceLost().then(() => console.log("resolved"), (e) => console.log("rejected: " + e.message));
      setInterval(() => {}, 1000); // only the addon's exit ends this process
    `;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe", env: process.env });
    const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    return { code, stdout, stderr };
  }

  test("the process prints the error to stderr and exits with EXIT.DEVICE_LOST; the call neither resolves nor rejects", async () => {
    const r = await loseDevice("cpu");
    expect(r.code).toBe(EXIT.DEVICE_LOST);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("revenant: fatal device error, exiting (status 74) so that the actor is restarted: ");
    expect(r.stderr).toContain("test_device_lost: cudaErrorIllegalAddress: an illegal memory access was encountered (simulated on the cpu backend");
    expect(r.stderr).toMatch(/\(at native\/src\/core\/backend\.cc:\d+\)/);
  });

  test.skipIf(!cuda.usable)("CUDA: a kernel that really faults is classified sticky and ends the process the same way", async () => {
    const r = await loseDevice("cuda");
    expect(r.code, r.stderr).toBe(EXIT.DEVICE_LOST);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("test_device_lost: cudaErrorIllegalAddress: ");
    expect(r.stderr).toContain("(sticky: the CUDA context is unusable until the process restarts)");
    expect(r.stderr).toMatch(/\(at native\/src\/cuda\/cuda_backend\.cu:\d+\)/);
  });

  test("a supervised actor whose device is lost exits, is restarted, and serves calls again", async () => {
    const { sup } = harness({ max_restarts: 1, max_task_retries: 0 }, { roles: deviceRoles });
    await sup.start([{ id: "model", role: "device_loser" }]);
    const actor = sup.actor("model");
    const firstPid = await actor.call<number>("pid");
    const err = await caught(actor.call("loseDevice"));
    expect(err).toBeInstanceOf(ActorDiedError);
    const died = err as ActorDiedError;
    expect(died.incarnation).toBe(1);
    expect(died.lastLines.join("\n")).toContain("fatal device error");
    // Calls made now wait for the restarted incarnation.
    expect(await actor.call<number>("incarnation")).toBe(2);
    expect(await actor.call<number>("pid")).not.toBe(firstPid);
    expect(await actor.call<string>("backend")).toBe("cpu");
    const death = sup.events.events.find((e) => e.type === "death");
    expect(death).toMatchObject({ actor: "model", incarnation: 1, cause: "exit", code: EXIT.DEVICE_LOST, signal: null });
    expect(died.exitCode).toBe(EXIT.DEVICE_LOST);
    expect(sup.metrics.totals("device_loser")).toMatchObject({ failures: 1, restarts: 1 });
  });
});
