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
import { isJobId, jobPaths, openJob, type JobPaths } from "../../rl/trainer/job.ts";
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
   * Every job folder with a readable record that `keep` accepts, in submission order, the job
   * folders that cannot be read (each reported as an error, with the file and the reason) and the
   * next submission number (past every record, kept or not). Records are read first and
   * configurations only for the jobs kept, so a run dir of many old jobs loads quickly.
   */
  load(keep: (record: JobRecord) => boolean = () => true): { jobs: StoredJob[]; unreadable: UnreadableJob[]; nextSeq: number } {
    const records: JobRecord[] = [];
    const unreadable: UnreadableJob[] = [];
    let nextSeq = 0;
    for (const name of readdirSync(this.root).sort()) {
      const read = this.readRecord(name);
      if (read === undefined) continue;
      if ("problem" in read) {
        unreadable.push(this.unreadable(name, read.problem));
        continue;
      }
      nextSeq = Math.max(nextSeq, read.record.seq + 1);
      if (keep(read.record)) records.push(read.record);
    }
    records.sort((a, b) => a.seq - b.seq);
    const jobs: StoredJob[] = [];
    for (const record of records) {
      const opened = this.open(record);
      if ("problem" in opened) unreadable.push(this.unreadable(record.id, opened.problem, record.seq));
      else jobs.push(opened);
    }
    return { jobs, unreadable, nextSeq };
  }

  /** One job by id, read from its folder; undefined if it has no readable record. */
  loadOne(id: string): StoredJob | undefined {
    const read = this.readRecord(id, false);
    if (read === undefined || "problem" in read) return undefined;
    const opened = this.open(read.record);
    return "problem" in opened ? undefined : opened;
  }

  /** The folder's record; undefined when it has none (a CLI job, or not a job at all). */
  private readRecord(name: string, report = true): { record: JobRecord } | { problem: string } | undefined {
    const file = join(this.root, name, RECORD_FILE);
    if (!existsSync(file)) return undefined;
    try {
      // A device or a pipe in its place would never end a read.
      if (!statSync(file).isFile()) throw new Error("not a regular file");
      const record = JobRecordSchema.parse(JSON.parse(readFileSync(file, "utf8")));
      if (record.id !== name) throw new Error(`record names job ${record.id}`);
      return { record };
    } catch (e) {
      return { problem: this.problem(file, e, report) };
    }
  }

  private open(record: JobRecord): StoredJob | { problem: string } {
    try {
      const { paths, config } = openJob(join(this.root, record.id));
      return { record, config, paths };
    } catch (e) {
      return { problem: this.problem(join(this.root, record.id), e, true) };
    }
  }

  private problem(file: string, e: unknown, report: boolean): string {
    const reason = `${file}: ${firstLine(e)}`;
    if (report) this.warn(`error: job folder cannot be read: ${reason}`);
    return reason;
  }

  private unreadable(name: string, problem: string, seq?: number): UnreadableJob {
    const id = isJobId(name) ? name : undefined;
    return { id, seq, problem, paths: jobPaths(join(this.root, name)) };
  }
}

/** A job folder whose record or configuration cannot be read: listed as failed, never skipped silently. */
export interface UnreadableJob {
  /** The folder's name when it is a job id (then the job is listed); undefined otherwise (only reported). */
  id: string | undefined;
  /** Its submission number, when its record could be read. */
  seq: number | undefined;
  /** The file and the reason. */
  problem: string;
  paths: JobPaths;
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
