/**
 * Durable job records: `<run_dir>/<job>/job.json` beside the job's `config.json`, rewritten
 * atomically (temporary file, fsync, rename, fsync of the folder) on every status change, and
 * written before POST /jobs answers, so nothing accepted is lost when the coordinator dies. A
 * write that fails throws a WriteError naming the file and the system error code (ENOSPC, ...).
 *
 * @example
 * ```ts
 * const store = new JobStore("runs/");
 * for (const { record } of store.load().jobs) console.log(record.id, record.status);
 * ```
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import type { Config } from "../../../config/schema.ts";
import { writeFileDurably, writeFileDurablyAsync } from "../../core/files.ts";
import { openJob, type JobPaths } from "../../rl/trainer/job.ts";
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

export class JobStore {
  readonly root: string;

  constructor(runDir: string, private readonly warn: (line: string) => void = (l) => console.warn(l)) {
    this.root = resolve(runDir);
    mkdirSync(this.root, { recursive: true });
  }

  /** Makes a file the trainer wrote (the job's config.json) durable: rewritten through files.ts. */
  sync(path: string): void {
    writeFileDurably(path, readFileSync(path));
  }

  save(paths: JobPaths, record: JobRecord): void {
    writeFileDurably(join(paths.dir, RECORD_FILE), JSON.stringify(record, null, 1) + "\n");
  }

  /** `save` off the event loop. */
  saveAsync(paths: JobPaths, record: JobRecord): Promise<void> {
    return writeFileDurablyAsync(join(paths.dir, RECORD_FILE), JSON.stringify(record, null, 1) + "\n");
  }

  /**
   * Every job folder with a readable record that `keep` accepts, in submission order, and the
   * next submission number (past every record, kept or not); unreadable folders are reported and
   * skipped. Records are read first and configurations only for the jobs kept, so a run dir of
   * many old jobs loads quickly.
   */
  load(keep: (record: JobRecord) => boolean = () => true): { jobs: StoredJob[]; nextSeq: number } {
    const records: JobRecord[] = [];
    let nextSeq = 0;
    for (const name of readdirSync(this.root).sort()) {
      const record = this.readRecord(name);
      if (!record) continue;
      nextSeq = Math.max(nextSeq, record.seq + 1);
      if (keep(record)) records.push(record);
    }
    records.sort((a, b) => a.seq - b.seq);
    return { jobs: records.flatMap((record) => this.open(record) ?? []), nextSeq };
  }

  /** One job by id, read from its folder; undefined if it has no readable record. */
  loadOne(id: string): StoredJob | undefined {
    const record = this.readRecord(id);
    return record ? this.open(record) : undefined;
  }

  private readRecord(name: string): JobRecord | undefined {
    const file = join(this.root, name, RECORD_FILE);
    if (!existsSync(file)) return undefined; // a CLI job, or not a job at all
    try {
      // A device or a pipe in its place would never end a read.
      if (!statSync(file).isFile()) throw new Error("not a regular file");
      const record = JobRecordSchema.parse(JSON.parse(readFileSync(file, "utf8")));
      if (record.id !== name) throw new Error(`record names job ${record.id}`);
      return record;
    } catch (e) {
      this.warn(`skipping ${file}: ${(e as Error).message.split("\n")[0]}`);
      return undefined;
    }
  }

  private open(record: JobRecord): StoredJob | undefined {
    try {
      const { paths, config } = openJob(join(this.root, record.id));
      return { record, config, paths };
    } catch (e) {
      this.warn(`skipping job ${record.id}: ${(e as Error).message.split("\n")[0]}`);
      return undefined;
    }
  }
}
