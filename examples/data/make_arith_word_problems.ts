/**
 * Makes examples/data/arith_word_problems/{train,val}.jsonl: short arithmetic word problems
 * ("Sam has 3 apples and buys 4 more. How many apples does Sam have?") with their answers ("7"),
 * generated from a seed. Numbers stay small (answers 0..9) so a tiny policy can learn them.
 * Held-out problems are drawn first and never appear in the training set.
 *
 *   bun examples/data/make_arith_word_problems.ts   (rewrites both files; a test checks they match)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../runtime/core/rng.ts";

/** One data set row, with the keys the data reader looks for by default. */
export interface WordProblem {
  prompt: string;
  answer: string;
}

/** What the shipped files were made with. */
export const SHIPPED = { seed: 2024, trainSize: 1024, valSize: 64 } as const;

const NAMES = ["Sam", "Mia", "Ben", "Ava", "Leo", "Zoe", "Max", "Ivy", "Tom", "Eva"];
const ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "shells", "coins"];

interface Template {
  /** Draws the two numbers: small, and never a negative answer. */
  operands(rng: Rng): [number, number];
  answer(a: number, b: number): number;
  text(name: string, items: string, a: number, b: number): string;
}

const between = (rng: Rng, lo: number, hi: number) => lo + rng.int(hi - lo + 1);
// Every answer is one digit (0..9): a policy that starts from nothing finds a right answer by
// chance often enough to learn from, and only has to learn to read the two numbers.
const sum: Pick<Template, "operands" | "answer"> = {
  operands: (r) => {
    const a = between(r, 1, 8);
    return [a, between(r, 1, 9 - a)];
  },
  answer: (a, b) => a + b,
};
const difference: Pick<Template, "operands" | "answer"> = {
  operands: (r) => {
    const a = between(r, 2, 9);
    return [a, between(r, 1, a)];
  },
  answer: (a, b) => a - b,
};
const product: Pick<Template, "operands" | "answer"> = { operands: (r) => [between(r, 1, 3), between(r, 2, 3)], answer: (a, b) => a * b };

const TEMPLATES: Template[] = [
  { ...sum, text: (n, it, a, b) => `${n} has ${a} ${it} and buys ${b} more. How many ${it} does ${n} have?` },
  { ...sum, text: (n, it, a, b) => `${n} finds ${a} ${it} in the morning and ${b} in the afternoon. How many ${it} does ${n} find in all?` },
  { ...sum, text: (n, it, a, b) => `There are ${a} ${it} on the table. ${n} puts ${b} more there. How many ${it} are on the table?` },
  { ...difference, text: (n, it, a, b) => `${n} has ${a} ${it} and gives ${b} to a friend. How many ${it} does ${n} have left?` },
  { ...difference, text: (n, it, a, b) => `${n} had ${a} ${it} and lost ${b} of them. How many ${it} does ${n} have now?` },
  { ...product, text: (n, it, a, b) => `${n} has ${a} bags with ${b} ${it} in each bag. How many ${it} does ${n} have?` },
];

function drawProblem(rng: Rng): WordProblem {
  const template = rng.pick(TEMPLATES);
  const name = rng.pick(NAMES);
  const items = rng.pick(ITEMS);
  const [a, b] = template.operands(rng);
  return { prompt: template.text(name, items, a, b), answer: String(template.answer(a, b)) };
}

/** Distinct problems: `valSize` held-out ones first, then `trainSize` training ones not among them. */
export function makeArithWordProblems(seed: number, trainSize: number, valSize: number): { train: WordProblem[]; val: WordProblem[] } {
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const draw = (count: number): WordProblem[] => {
    const out: WordProblem[] = [];
    for (let attempt = 0; out.length < count; attempt++) {
      if (attempt > count * 100) throw new RangeError(`cannot draw ${count} distinct word problems; ask for fewer`);
      const problem = drawProblem(rng);
      if (seen.has(problem.prompt)) continue;
      seen.add(problem.prompt);
      out.push(problem);
    }
    return out;
  };
  const val = draw(valSize);
  return { train: draw(trainSize), val };
}

/** JSON-lines text of `rows`, one object per line. */
export function toJsonLines(rows: readonly WordProblem[]): string {
  return rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

if (import.meta.main) {
  const { train, val } = makeArithWordProblems(SHIPPED.seed, SHIPPED.trainSize, SHIPPED.valSize);
  const dir = join(import.meta.dirname!, "arith_word_problems");
  writeFileSync(join(dir, "train.jsonl"), toJsonLines(train));
  writeFileSync(join(dir, "val.jsonl"), toJsonLines(val));
}
