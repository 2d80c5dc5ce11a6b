/**
 * The built-in `math` reward: 1 when the response's final answer equals the reference answer, 0
 * otherwise.
 *
 * The response's final answer is, in this order of preference:
 * 1. after the last GSM8K marker `#### ` (to the end of that line);
 * 2. inside the last `\boxed{…}` (braces balanced, `\fbox` too);
 * 3. the last number anywhere in the text.
 * The reference answer field is read the same way for 1 and 2; otherwise the whole field is the
 * answer ("72", "-3.5", "1/2", "x+1").
 *
 * A span (after `####`, inside `\boxed{}`, or the whole answer field) is a number when, once
 * LaTeX decoration is gone (`\text{…}` units, `\$`, `\%`, `\!`, `\,`, spaces, a closing period),
 * it is one number, or starts with one followed by a space ("72 apples"). Numbers are read with
 * "," thousands separators ("1,000"), a leading "$" or "+", a trailing "%" (ignored, so "50%"
 * equals "50"), decimals (".5", "3.50"), simple fractions ("3/4", `\frac{3}{4}`) and a Unicode
 * minus sign. Two numbers are equal within a relative tolerance of 1e-6 (so "1/3" equals "0.333333").
 * When either side is not a number, the two spans are compared as text with whitespace and the
 * LaTeX spacing commands removed. A response with no final answer scores 0; an answer field with
 * none (empty) is a data error and throws.
 */

/** A final answer: its text and, when it is a number, its value. */
export interface FinalAnswer {
  text: string;
  value: number | undefined;
}

/** Relative tolerance of numeric equality: far below any difference a printed answer means. */
export const NUMERIC_TOLERANCE = 1e-6;

const NUMBER_CORE = String.raw`[-+]?\$?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\/\d+(?:\.\d+)?)?%?`;
/** A number in running text, not glued to a word or a preceding "." ("x2", "v1.2" are not numbers). */
const NUMBER_IN_TEXT = new RegExp(String.raw`(?<![\w.])${NUMBER_CORE}`, "g");
const LEADING_NUMBER = new RegExp(String.raw`^(${NUMBER_CORE})(?=\s)`);
const PLAIN_NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * The `math` reward: 1 or 0; see the module header.
 *
 * @example
 * ```ts
 * mathReward("Sam has 3 apples…", "He has 3 + 4 = 7 apples.", "#### 7"); // 1
 * ```
 */
export function mathReward(_prompt: string, response: string, answer: string): number {
  const want = referenceAnswer(answer);
  const got = extractFinalAnswer(response);
  return got !== undefined && answersEqual(got, want) ? 1 : 0;
}

/** The reference answer of an answer field; throws when the field holds none. */
export function referenceAnswer(answer: string): FinalAnswer {
  const found = markedAnswer(normalizeMinus(answer)) ?? (answer.trim() ? spanAnswer(normalizeMinus(answer)) : undefined);
  if (found === undefined || found.text === "") {
    throw new RangeError(`math reward: the answer field ${JSON.stringify(answer)} holds no answer; expected a number, "#### <answer>" or "\\boxed{<answer>}"`);
  }
  return found;
}

/** The final answer of a response (see the module header), or undefined when it has none. */
export function extractFinalAnswer(response: string): FinalAnswer | undefined {
  const text = normalizeMinus(response);
  const marked = markedAnswer(text);
  if (marked !== undefined && marked.text !== "") return marked;
  const numbers = text.match(NUMBER_IN_TEXT);
  if (!numbers) return undefined;
  const last = numbers[numbers.length - 1]!;
  return { text: last, value: parseNumber(last) };
}

/** Whether two final answers are equal: numerically when both are numbers, else as normalised text. */
export function answersEqual(a: FinalAnswer, b: FinalAnswer): boolean {
  if (a.value !== undefined && b.value !== undefined) {
    return Math.abs(a.value - b.value) <= NUMERIC_TOLERANCE * Math.max(1, Math.abs(a.value), Math.abs(b.value));
  }
  return normalizeText(a.text) === normalizeText(b.text);
}

/**
 * The value of one number written as text ("1,000", "$3.50", "-2", "+4", "50%", "3/4",
 * `\frac{3}{4}`), or undefined when `text` is not one number.
 */
export function parseNumber(text: string): number | undefined {
  let s = stripDecoration(normalizeMinus(text));
  s = s.replace(/^([-+]?)\$/, "$1").replace(/%$/, "");
  if (/,/.test(s)) {
    if (!/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) return undefined;
    s = s.replaceAll(",", "");
  }
  const slash = s.indexOf("/");
  if (slash >= 0) {
    const [num, den] = [s.slice(0, slash), s.slice(slash + 1)];
    if (!PLAIN_NUMBER.test(num) || !PLAIN_NUMBER.test(den) || Number(den) === 0) return undefined;
    return Number(num) / Number(den);
  }
  return PLAIN_NUMBER.test(s) ? Number(s) : undefined;
}

/** The answer after the last "####" or inside the last \boxed{}, when the text has either. */
function markedAnswer(text: string): FinalAnswer | undefined {
  const hashes = text.lastIndexOf("####");
  if (hashes >= 0) return spanAnswer(text.slice(hashes + 4).split("\n", 1)[0]!);
  const boxed = lastBoxedContent(text);
  return boxed === undefined ? undefined : spanAnswer(boxed);
}

/** A span's answer: its number when it is one or starts with one, else its text. */
function spanAnswer(span: string): FinalAnswer {
  const text = span.trim();
  const value = parseNumber(text);
  if (value !== undefined) return { text, value };
  const leading = stripUnits(text).match(LEADING_NUMBER)?.[1];
  return { text, value: leading === undefined ? undefined : parseNumber(leading) };
}

/** The content of the last `\boxed{…}` or `\fbox{…}`, braces balanced; undefined when there is none or it never closes. */
function lastBoxedContent(text: string): string | undefined {
  const starts = [...text.matchAll(/\\(?:boxed|fbox)\s*\{/g)];
  const last = starts[starts.length - 1];
  if (!last) return undefined;
  let depth = 1;
  const open = last.index + last[0].length;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(open, i);
  }
  return undefined;
}

/** `\text{…}`-style unit words removed (kept apart so "72 apples" keeps its space). */
function stripUnits(s: string): string {
  return s.replace(/\\(?:text|mbox|mathrm|textbf)\s*\{[^{}]*\}/g, " ").replace(/\^\s*\{?\\circ\}?/g, "").trim();
}

/** LaTeX decoration around a number removed: units, `\$`, `\%`, spacing commands, spaces, a closing period. */
function stripDecoration(s: string): string {
  return stripUnits(s)
    .replace(/\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}/g, "$1/$2")
    .replace(/\\([$%])/g, "$1")
    .replace(/\\[!,;: ]/g, "")
    .replace(/\s+/g, "")
    .replace(/\.$/, "");
}

/** Text compared as text: spacing (LaTeX's too), `\left`/`\right` and a closing period dropped, fraction commands unified. */
function normalizeText(s: string): string {
  return s.replace(/\\(?:left|right|displaystyle)\b/g, "").replace(/\\[dt]frac/g, "\\frac").replace(/\\[!,;: ]/g, "")
    .replace(/\s+/g, "").replace(/\$/g, "").replace(/\.$/, "");
}

/** The Unicode minus sign (U+2212), which typeset text uses, read as "-". */
function normalizeMinus(s: string): string {
  return s.replaceAll("\u2212", "-");
}
