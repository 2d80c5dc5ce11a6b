/** The addon loads in this runtime, reports what it has, and fails with a named, useful error. */
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUILD_COMMAND, NativeAddonError, loadNative } from "../../native/loader.ts";
import { formatDeviceInfo } from "../../native/device_report.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("native addon", () => {
  test("deviceInfo reports backends, CUDA state, BLAS and threads", () => {
    const info = loadNative().deviceInfo();
    expect(info.backends[0]).toBe("cpu");
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.hardwareThreads).toBeGreaterThanOrEqual(1);
    expect(info.cuda.compiled).toBe(info.backends.includes("cuda"));
    if (info.cuda.usable) {
      expect(info.cuda.reason).toBeNull();
      expect(info.cuda.device!.name.length).toBeGreaterThan(0);
      expect(info.cuda.device!.computeCapability).toMatch(/^\d+\.\d+$/);
    } else {
      // No device: it must say why, and report no device.
      expect(info.cuda.reason!.length).toBeGreaterThan(0);
      expect(info.cuda.device).toBeNull();
      console.log(`[no GPU] deviceInfo: ${info.cuda.reason}`);
    }
    expect(typeof info.blas.linked).toBe("boolean");
    expect(info.blas.vendor).toBe(info.blas.linked ? "OpenBLAS" : "none");
  });

  test("the CUDA backend is compiled in when nvcc and a GPU are on this machine (or REVENANT_CUDA=1 asked for it), and left out otherwise", () => {
    const hasNvcc = Bun.which("nvcc") !== null || Bun.which("nvcc", { PATH: "/usr/local/cuda/bin" }) !== null;
    const hasGpu = spawnSync("nvidia-smi", ["-L"], { encoding: "utf8" }).stdout?.includes("GPU") ?? false;
    const asked = process.env.REVENANT_CUDA;
    if (!hasNvcc || asked === "0") {
      console.log(`[skip] ${hasNvcc ? "REVENANT_CUDA=0" : "nvcc not found on this machine"}`);
      return;
    }
    const info = loadNative().deviceInfo();
    if (hasGpu || asked === "1") expect(info.backends).toContain("cuda");
    else {
      expect(info.backends).not.toContain("cuda"); // a machine without a GPU installs the CPU addon alone
      expect(info.cuda.reason).toContain("REVENANT_CUDA=1");
    }
  });

  test("the device report prints one line per fact", () => {
    const text = formatDeviceInfo(loadNative().deviceInfo());
    expect(text.split("\n").map((l) => l.split(":")[0])).toEqual(["backends", "cuda", "blas", "threads"]);
  });

  test("a missing addon throws NativeAddonError naming the build command", () => {
    const dir = tempDir("revenant-addon-");
    let err: unknown;
    try {
      loadNative([join(dir, "revenant.node")]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeAddonError);
    expect((err as Error).name).toBe("NativeAddonError");
    expect((err as Error).message).toContain("not found");
    expect((err as Error).message).toContain(BUILD_COMMAND);
  });

  test("a broken addon file throws NativeAddonError with the cause", () => {
    const dir = tempDir("revenant-addon-");
    const path = join(dir, "revenant.node");
    writeFileSync(path, "this is not a shared object");
    let err: unknown;
    try {
      loadNative([path]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeAddonError);
    expect((err as Error).message).toContain("failed to load");
    expect((err as Error).message).toContain(BUILD_COMMAND);
  });
});
