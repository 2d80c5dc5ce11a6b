/** Data files: JSON lines, JSON arrays and Parquet, read in order, with errors naming the file, line or row, and key. */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { DataError, readDataFile, readDataFiles } from "../../../runtime/rl/data/index.ts";
import { tempDir } from "../../helpers/tmp.ts";

const dir = tempDir("revenant-data-");
/** Writes `text` (or bytes) to a file of the test folder and returns its path. */
function file(name: string, content: string | ArrayBuffer): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : new Uint8Array(content));
  return path;
}
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "What is 2 + 2?" }];

describe("readDataFiles", () => {
  test("JSON lines: string and chat prompts, numeric answers as text, blank lines skipped", async () => {
    const path = file("a.jsonl", `${JSON.stringify({ prompt: "1+1?", answer: "2" })}\n\n${JSON.stringify({ prompt: messages, answer: 4 })}\r\n`);
    expect(await readDataFiles(path)).toEqual([
      { prompt: "1+1?", answer: "2", where: `${path} line 1` },
      { prompt: messages, answer: "4", where: `${path} line 3` },
    ]);
  });

  test("several files, in the order given; custom and dotted keys", async () => {
    const a = file("k1.jsonl", jsonl([{ problem: "p1", solution: "s1" }, { problem: "p2", solution: "s2" }]));
    const b = file("k2.json", JSON.stringify([{ problem: "p3", solution: "s3" }]));
    const keys = { promptKey: "problem", answerKey: "solution" };
    expect((await readDataFiles([b, a], keys)).map((r) => [r.prompt, r.where])).toEqual([["p3", `${b} row 0`], ["p1", `${a} line 1`], ["p2", `${a} line 2`]]);
    const nested = file("nested.jsonl", jsonl([{ prompt: "q", reward_model: { ground_truth: "42" } }]));
    expect((await readDataFiles(nested, { answerKey: "reward_model.ground_truth" }))[0]!.answer).toBe("42");
  });

  test("Parquet: string and list<struct> prompt columns, struct columns under a dotted key, only the needed columns", async () => {
    const path = file("t.parquet", parquetWriteBuffer({ columnData: [
      { name: "prompt", data: [messages, [{ role: "user", content: "3+4?" }]] },
      { name: "reward_model", data: [{ ground_truth: "4" }, { ground_truth: "7" }] },
      { name: "unused", data: [1.5, 2.5] },
    ] }));
    expect(await readDataFiles(path, { answerKey: "reward_model.ground_truth" })).toEqual([
      { prompt: messages, answer: "4", where: `${path} row 0` },
      { prompt: [{ role: "user", content: "3+4?" }], answer: "7", where: `${path} row 1` },
    ]);
    const plain = file("plain.parquet", parquetWriteBuffer({ columnData: [
      { name: "prompt", data: ["a", "b"], type: "STRING" },
      { name: "answer", data: [10n, 20n], type: "INT64" },
    ] }));
    expect((await readDataFiles(plain)).map((r) => [r.prompt, r.answer])).toEqual([["a", "10"], ["b", "20"]]);
  });

  test("Parquet compressed with GZIP is read through node:zlib", async () => {
    const path = file("gz.parquet", parquetWriteBuffer({
      codec: "GZIP",
      compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) },
      columnData: [{ name: "prompt", data: ["x"], type: "STRING" }, { name: "answer", data: ["y"], type: "STRING" }],
    }));
    expect((await readDataFiles(path))[0]).toMatchObject({ prompt: "x", answer: "y" });
  });

  const fifo = () => {
    const path = join(dir, "fifo.jsonl");
    if (!existsSync(path)) execFileSync("mkfifo", [path]);
    return path;
  };
  const bad = () => {
    mkdirSync(join(dir, "folder.jsonl"), { recursive: true });
    return [
      ["no files", [] as string[], "no data files given; give a path or a list of paths to .jsonl, .json or .parquet files"],
      ["a setting that is not a path", 5 as unknown as string, "data files must be a path or a list of paths (got a number)"],
      ["a missing file", join(dir, "missing.jsonl"), `${join(dir, "missing.jsonl")}: no such data file`],
      ["a folder", join(dir, "folder.jsonl"), "folder.jsonl: not a file but a folder; give the data file itself"],
      ["a FIFO", fifo(), "fifo.jsonl: not a file but a FIFO (named pipe); give the data file itself"],
      ["an unknown extension", file("data.csv", "prompt,answer\n"), `data.csv: unknown data file type ".csv"; data files end in .jsonl, .json, .parquet`],
      ["an empty file", file("empty.jsonl", "\n\n"), "empty.jsonl: the file has no rows"],
      ["an empty parquet file", file("empty.parquet", parquetWriteBuffer({ columnData: [
        { name: "prompt", data: [], type: "STRING" }, { name: "answer", data: [], type: "STRING" }] })), "empty.parquet: the file has no rows"],
      ["invalid JSON", file("broken.jsonl", `${JSON.stringify({ prompt: "a", answer: "b" })}\n{"prompt": "x",\n`),
        "broken.jsonl line 2: not valid JSON ("],
      ["a row that is not an object", file("array.jsonl", "[1, 2]\n"), `array.jsonl line 1: a row must be an object with "prompt" and "answer" keys (got an array)`],
      ["a missing prompt key", file("nokey.jsonl", jsonl([{ question: "q", answer: "a" }])),
        `nokey.jsonl line 1: no "prompt" key (the row has: question, answer); set data.prompt_key to the key that holds it`],
      ["a missing answer key", file("noanswer.jsonl", jsonl([{ prompt: "q", answer: "a" }, { prompt: "q" }])),
        `noanswer.jsonl line 2: no "answer" key (the row has: prompt); set data.answer_key to the key that holds it`],
      ["a prompt of the wrong type", file("num.jsonl", jsonl([{ prompt: 5, answer: "a" }])),
        `num.jsonl line 1: "prompt" must be a string or a list of chat messages [{role, content}] (got a number)`],
      ["an empty prompt", file("blank.jsonl", jsonl([{ prompt: "  ", answer: "a" }])), `blank.jsonl line 1: "prompt" is an empty prompt`],
      ["a bad chat message", file("chat.jsonl", jsonl([{ prompt: [{ role: "user", content: null }], answer: "a" }])),
        `chat.jsonl line 1: "prompt": chat message 0: "content" must be a string (got null)`],
      ["an answer of the wrong type", file("ans.jsonl", jsonl([{ prompt: "q", answer: ["a"] }])),
        `ans.jsonl line 1: "answer" must be a string or a number (got an array)`],
      ["a JSON file that is not an array of rows", file("obj.json", "[1"), "obj.json: not valid JSON ("],
      ["a Parquet file without the column", file("cols.parquet", parquetWriteBuffer({ columnData: [
        { name: "question", data: ["q"], type: "STRING" }, { name: "answer", data: ["a"], type: "STRING" }] })),
        `cols.parquet: no "prompt" column (the file has: question, answer); set data.prompt_key to the column that holds it`],
      ["a Parquet row of the wrong type", file("types.parquet", parquetWriteBuffer({ columnData: [
        { name: "prompt", data: ["q", "r"], type: "STRING" }, { name: "answer", data: [true, false], type: "BOOLEAN" }] })),
        `types.parquet row 0: "answer" must be a string or a number (got a boolean)`],
      ["a file that is not Parquet", file("fake.parquet", "not parquet at all"), "fake.parquet: not a Parquet file ("],
    ] as const;
  };
  for (const [name, paths, message] of bad()) {
    test(`a clear error for ${name}`, async () => {
      const error = await readDataFiles(paths).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message).toContain(message);
    });
  }

  test("verl's data_source and extra_info travel with a row (JSONL and Parquet), for a reward's compute_score", async () => {
    const jsonlPath = file("verl.jsonl", jsonl([
      { prompt: "1+1?", answer: "2", data_source: "openai/gsm8k", extra_info: { split: "train", index: 3 } },
      { prompt: "2+2?", answer: "4", data_source: 5, extra_info: "not an object" },
    ]));
    expect(await readDataFiles(jsonlPath)).toEqual([
      { prompt: "1+1?", answer: "2", where: `${jsonlPath} line 1`, dataSource: "openai/gsm8k", extraInfo: { split: "train", index: 3 } },
      { prompt: "2+2?", answer: "4", where: `${jsonlPath} line 2` },
    ]);
    const parquetPath = file("verl.parquet", parquetWriteBuffer({ columnData: [
      { name: "prompt", data: ["a"], type: "STRING" }, { name: "answer", data: ["1"], type: "STRING" },
      { name: "data_source", data: ["lighteval/MATH"], type: "STRING" }, { name: "extra_info", data: [{ index: 7 }] },
    ] }));
    expect(await readDataFiles(parquetPath)).toEqual([
      { prompt: "a", answer: "1", where: `${parquetPath} row 0`, dataSource: "lighteval/MATH", extraInfo: { index: 7 } },
    ]);
  });

  describe("the byte bound on a line (data.max_line_bytes)", () => {
    test("a 10 MB line is refused by the default 1 MiB bound, naming the file and the line", async () => {
      const huge = JSON.stringify({ prompt: "x".repeat(10_000_000), answer: "a" });
      const path = file("huge.jsonl", `${jsonl([{ prompt: "ok", answer: "a" }])}${huge}\n`);
      const error = await readDataFiles(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataError);
      expect((error as Error).message).toBe(`${path} line 2 is longer than 1048576 bytes, over data.max_line_bytes=1048576; a line holds one row (shorten or drop it, or raise data.max_line_bytes)`);
    });

    test("lines up to the bound are read; one byte more is refused", async () => {
      const row = JSON.stringify({ prompt: "é".repeat(40_000), answer: "a" }); // 80 000 bytes of prompt, across chunk ends
      const bytes = Buffer.byteLength(row);
      const path = file("bound.jsonl", `${row}\n${row}`);
      const rows = await readDataFiles(path, { maxLineBytes: bytes });
      expect(rows.map((r) => [r.prompt, r.where])).toEqual([["é".repeat(40_000), `${path} line 1`], ["é".repeat(40_000), `${path} line 2`]]);
      const error = await readDataFiles(path, { maxLineBytes: bytes - 1 }).catch((e: unknown) => e);
      expect((error as Error).message).toStartWith(`${path} line 1 is ${bytes} bytes, over data.max_line_bytes=${bytes - 1}`);
    });

    test("a prompt of a JSON array or Parquet row is bound the same way", async () => {
      const long = "y".repeat(200);
      const array = file("long.json", JSON.stringify([{ prompt: "ok", answer: "a" }, { prompt: long, answer: "a" }]));
      const error = await readDataFiles(array, { maxLineBytes: 100 }).catch((e: unknown) => e);
      expect((error as Error).message).toBe(`${array} row 1: "prompt" is a prompt of 200 bytes, over data.max_line_bytes=100; shorten it, drop the row, or raise data.max_line_bytes`);
      const chat = file("longchat.parquet", parquetWriteBuffer({ columnData: [
        { name: "prompt", data: [long], type: "STRING" }, { name: "answer", data: ["a"], type: "STRING" }] }));
      const perror = await readDataFiles(chat, { maxLineBytes: 100 }).catch((e: unknown) => e);
      expect((perror as Error).message).toStartWith(`${chat} row 0: "prompt" is a prompt of 200 bytes, over data.max_line_bytes=100`);
    });
  });

  test("readDataFile reads one file", async () => {
    expect(await readDataFile(file("one.jsonl", jsonl([{ prompt: "p", answer: "a" }])))).toHaveLength(1);
  });
});
