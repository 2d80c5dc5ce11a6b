/**
 * The data of a job: training and held-out prompts generated from `data.seed`, and a loader
 * whose position (epoch, offset) is saved in checkpoints, so a resumed job neither repeats nor
 * skips a prompt. Held-out prompts never appear in the training set.
 */
import { Rng } from "../../core/rng.ts";
import { TASKS, type Task, type TaskName } from "./tasks.ts";

export interface DataConfig {
  task: TaskName;
  seed: number;
  train_size: number;
  val_size: number;
  min_digits: number;
  max_digits: number;
  train_batch_size: number;
}

export interface Dataset {
  task: Task;
  train: string[];
  val: string[];
}

/** Prompts drawn at most per prompt wanted, before a data set is declared impossible (the service's check uses the same bound). */
export const ATTEMPTS_PER_PROMPT = 50;

/** Generates distinct prompts: held-out ones first, then training ones not among them. */
export function makeDataset(cfg: DataConfig): Dataset {
  const task = TASKS[cfg.task];
  const rng = new Rng(cfg.seed);
  const val = new Set<string>();
  const train: string[] = [];
  const attempts = (cfg.val_size + cfg.train_size) * ATTEMPTS_PER_PROMPT;
  for (let i = 0; i < attempts && val.size < cfg.val_size; i++) val.add(task.makePrompt(rng, cfg.min_digits, cfg.max_digits));
  for (let i = 0; i < attempts && train.length < cfg.train_size; i++) {
    const p = task.makePrompt(rng, cfg.min_digits, cfg.max_digits);
    if (!val.has(p)) train.push(p);
  }
  if (val.size < cfg.val_size || train.length < cfg.train_size) {
    throw new RangeError(`data: cannot make ${cfg.val_size} held-out and ${cfg.train_size} training prompts of ` +
      `${cfg.min_digits}-${cfg.max_digits} digits for ${cfg.task}; lower data.train_size/data.val_size or raise data.max_digits`);
  }
  return { task, train, val: [...val] };
}

/** Where the loader is: saved with every checkpoint. */
export interface LoaderPosition {
  epoch: number;
  offset: number;
}

/** Batches of training prompts; each epoch is a fresh permutation seeded by (seed, epoch). */
export class DataLoader<T> {
  private order: number[] = [];
  private position: LoaderPosition = { epoch: 0, offset: 0 };

  constructor(private readonly prompts: readonly T[], private readonly batchSize: number, private readonly seed: number) {
    this.seek({ epoch: 0, offset: 0 });
  }

  get state(): LoaderPosition {
    return { ...this.position };
  }

  /** Moves to a saved position. */
  seek(position: LoaderPosition): void {
    this.position = { ...position };
    this.order = permutation(this.prompts.length, new Rng(this.seed * 1_000_003 + position.epoch));
  }

  /** The next batch, wrapping into a new epoch when this one runs out. */
  next(): T[] {
    const out: T[] = [];
    while (out.length < this.batchSize) {
      if (this.position.offset >= this.order.length) this.seek({ epoch: this.position.epoch + 1, offset: 0 });
      out.push(this.prompts[this.order[this.position.offset++]!]!);
    }
    return out;
  }
}

function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}
