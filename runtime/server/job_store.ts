/**
 * Durable job records: `<run_dir>/<job>/job.json` beside the job's `config.json`, rewritten
 * atomically (temporary file, fsync, rename, fsync of the folder) on every status change, and
 * written before POST /jobs answers, so nothing accepted is lost when the coordinator dies.
 *
 * @example
 * ```ts
 * const store = new JobStore("runs/");
 * for (const { record, config, paths } of store.load()) console.log(record.id, record.status);
 * ```
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import type { Config } from "../../config/schema.ts";
import { openJob, type JobPaths } from "../trainer/job.ts";
import { JobIdSchema, JobResultSchema, JobStatusSchema } from "./schemas.ts";

export const RECORD_FILE = "job.json";

export const JobRecordSchema = z.object({
  format: z.literal("revenant-job/1"),
  id: JobIdSchema,
  /** Submission order, across coordinator restarts. */
  seq: z.number().int().min(0),
  status: JobStatusSchema,
  submitted_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  cancel_requested: z.boolean(),
  error: z.string().nullable(),
  runs: z.number().int().min(0),
  result: JobResultSchema.nullable(),
});
export type JobRecord = z.output<typeof JobRecordSchema>;

export interface StoredJob {
  record: JobRecord;
  config: Config;
  paths: JobPaths;
}

function writeFileDurably(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(resolve(path, ".."), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export class JobStore {
  readonly root: string;

  constructor(runDir: string, private readonly warn: (line: string) => void = (l) => console.warn(l)) {
    this.root = resolve(runDir);
    mkdirSync(this.root, { recursive: true });
  }

  /** Flushes a file the trainer wrote (the job's config.json) to disk. */
  sync(path: string): void {
    const fd = openSync(path, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  save(paths: JobPaths, record: JobRecord): void {
    writeFileDurably(join(paths.dir, RECORD_FILE), JSON.stringify(record, null, 1) + "\n");
  }

  /** Every job folder with a readable record, in submission order; unreadable ones are reported and skipped. */
  load(): StoredJob[] {
    const jobs: StoredJob[] = [];
    for (const name of readdirSync(this.root).sort()) {
      const file = join(this.root, name, RECORD_FILE);
      if (!existsSync(file)) continue; // a CLI job, or not a job at all
      try {
        const record = JobRecordSchema.parse(JSON.parse(readFileSync(file, "utf8")));
        if (record.id !== name) throw new Error(`record names job ${record.id}`);
        const { paths, config } = openJob(join(this.root, name));
        jobs.push({ record, config, paths });
      } catch (e) {
        this.warn(`skipping ${file}: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    return jobs.sort((a, b) => a.record.seq - b.record.seq);
  }
}
