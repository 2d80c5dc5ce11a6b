/**
 * Tasks with verifiable rewards, generated from a seed (no downloads). Each task makes prompts
 * and scores a response with a plain function `(prompt, response) → [0, 1]`, with partial
 * credit per correct position so learning has a gradient to climb.
 *
 * - digit_reversal: "3141=" → "1413"
 * - sorting:        "3141=" → "1134"
 * - addition:       "12+345=" → "357"
 */
import { Rng } from "../../core/rng.ts";

export type TaskName = "digit_reversal" | "sorting" | "addition";

export interface Task {
  name: TaskName;
  /** A prompt's text, ending with "=". */
  makePrompt(rng: Rng, minDigits: number, maxDigits: number): string;
  /** The one correct answer. */
  answer(prompt: string): string;
  /** Longest correct answer for prompts of up to `maxDigits` digits (EOS not included). */
  maxAnswerLength(maxDigits: number): number;
  /** Longest prompt text (characters, "=" included) `makePrompt` can make with up to `maxDigits` digits. */
  maxPromptLength(maxDigits: number): number;
  /** How many distinct prompts `makePrompt` can make (may be Infinity): bounds a data set without generating it. */
  distinctPrompts(minDigits: number, maxDigits: number): number;
}

/** Strings of minDigits..maxDigits digits, `first` choices for the leading one and 10 for the others. */
function numbersOfLength(minDigits: number, maxDigits: number, first: number): number {
  let n = 0;
  for (let d = minDigits; d <= maxDigits && Number.isFinite(n); d++) n += first * 10 ** (d - 1);
  return n;
}

function digits(rng: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String(rng.int(10));
  return s;
}

const lengthIn = (rng: Rng, min: number, max: number) => min + rng.int(max - min + 1);
const operand = (prompt: string) => prompt.slice(0, prompt.indexOf("="));

export const TASKS: Record<TaskName, Task> = {
  digit_reversal: {
    name: "digit_reversal",
    makePrompt: (rng, min, max) => `${digits(rng, lengthIn(rng, min, max))}=`,
    answer: (p) => [...operand(p)].reverse().join(""),
    maxAnswerLength: (max) => max,
    maxPromptLength: (max) => max + 1,
    distinctPrompts: (min, max) => numbersOfLength(min, max, 10),
  },
  sorting: {
    name: "sorting",
    makePrompt: (rng, min, max) => `${digits(rng, lengthIn(rng, min, max))}=`,
    answer: (p) => [...operand(p)].sort().join(""),
    maxAnswerLength: (max) => max,
    maxPromptLength: (max) => max + 1,
    distinctPrompts: (min, max) => numbersOfLength(min, max, 10),
  },
  addition: {
    name: "addition",
    makePrompt: (rng, min, max) => {
      // No leading zeros, so every problem has one canonical answer.
      const num = () => {
        const n = lengthIn(rng, min, max);
        return String(1 + rng.int(9)) + digits(rng, n - 1);
      };
      return `${num()}+${num()}=`;
    },
    answer: (p) => {
      const [a, b] = operand(p).split("+");
      return String(BigInt(a!) + BigInt(b!));
    },
    maxAnswerLength: (max) => max + 1,
    maxPromptLength: (max) => 2 * max + 2,
    distinctPrompts: (min, max) => numbersOfLength(min, max, 9) ** 2,
  },
};

/**
 * The reward: 1 for the exact answer followed by EOS; otherwise partial credit, the fraction
 * of answer positions right, scaled by 0.9 (so only an exact answer scores 1), and 0.5 off
 * that when the response never ended.
 */
export function reward(task: Task, prompt: string, response: string, ended = true): number {
  const want = task.answer(prompt);
  if (ended && response === want) return 1;
  let right = 0;
  for (let i = 0; i < want.length; i++) if (response[i] === want[i]) right++;
  const extra = Math.max(0, response.length - want.length);
  const partial = Math.max(0, right - extra) / want.length;
  return 0.9 * partial * (ended ? 1 : 0.5);
}
