/**
 * Runs in a worker thread: makes a job's data (generating a task's prompts, or reading and
 * tokenizing its files) away from the coordinator's event loop, which keeps answering requests
 * meanwhile, and posts it back packed (one transferred Int32Array of token ids) so that the
 * coordinator's thread only unpacks it.
 */
import type { Config } from "../../../config/schema.ts";
import { loadJobData, packJobData, type DataWorkerReply } from "./job_data.ts";

// A worker's global scope, typed here so this file also type-checks outside a worker lib.
const scope = globalThis as unknown as {
  onmessage: ((e: { data: Config }) => void) | null;
  postMessage(message: DataWorkerReply, transfer?: ArrayBuffer[]): void;
};

scope.onmessage = async (e) => {
  try {
    const packed = packJobData(await loadJobData(e.data));
    scope.postMessage({ ok: true, packed }, [packed.ids.buffer as ArrayBuffer]);
  } catch (err) {
    const error = err as Error & { path?: string };
    scope.postMessage({ ok: false, name: error.name, message: error.message, ...(error.path === undefined ? {} : { path: error.path }) });
  }
};
