/**
 * A Hugging Face tokenizer folder as a TextTokenizer: `tokenizer.json` (the "fast" tokenizer:
 * normalizer, pre-tokenizer, BPE/WordPiece/Unigram model, decoder) run by the pure-JS
 * @huggingface/tokenizers, and `tokenizer_config.json` for the special tokens and the chat
 * template. Optional files, read when present:
 *
 * - `special_tokens_map.json`: special tokens the config does not name;
 * - `generation_config.json`: `eos_token_id` (an id or a list) adds stop ids, and names the EOS
 *   when no file names an eos_token; `pad_token_id` likewise;
 * - `chat_template.jinja`: the chat template, preferred over the config's (newer transformers
 *   save it there).
 *
 * Which id is which:
 * - eosId: `eos_token` of tokenizer_config.json, else of special_tokens_map.json, else the first
 *   `eos_token_id` of generation_config.json; none of them is an error.
 * - padId: `pad_token` likewise, else generation_config's `pad_token_id`, else eosId (as verl
 *   does for tokenizers without a pad token).
 * - bosId: `bos_token` when set; undefined otherwise (Qwen has none).
 * - special ids: every added token marked `special`, and every token the files name as special.
 *
 * Decoding keeps text exact: `clean_up_tokenization_spaces` (which rewrites " ." to ".") is off
 * unless tokenizer_config.json turns it on, as in current transformers.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { MODEL_LIMITS } from "../../../native/model_limits.ts";
import { readRegularFile } from "../../../native/hf/regular_file.ts";
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions } from "./chat_template.ts";
import { checkTokenIds, TokenizerError, type DecodeOptions, type EncodeOptions, type TextTokenizer } from "./tokenizer.ts";

type Json = Record<string, unknown>;

/** Special-token names transformers knows, as template variables and as config keys. */
const SPECIAL_TOKEN_NAMES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] as const;

/**
 * Loads the tokenizer in folder `dir`; throws a TokenizerError naming the file and what was wrong.
 *
 * @example
 * ```ts
 * const tok = loadHfTokenizer("tests/fixtures/tokenizer");
 * tok.decode(tok.encode("Hi there", { addSpecialTokens: false }), { skipSpecialTokens: true }); // "Hi there"
 * ```
 */
export function loadHfTokenizer(dir: string): HfTokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TokenizerError(`tokenizer folder ${dir} does not exist; give the folder holding tokenizer.json and tokenizer_config.json`);
  }
  const required = (name: string) => {
    const json = readJsonFile(dir, name);
    if (json === undefined) {
      throw new TokenizerError(`${join(dir, name)} not found; a tokenizer folder needs tokenizer.json and tokenizer_config.json ` +
        `(transformers writes both with tokenizer.save_pretrained)`);
    }
    return json;
  };
  const files: TokenizerFiles = {
    dir,
    tokenizer: required("tokenizer.json"),
    config: required("tokenizer_config.json"),
    specialTokensMap: readJsonFile(dir, "special_tokens_map.json") ?? {},
    generationConfig: readJsonFile(dir, "generation_config.json") ?? {},
    chatTemplateFile: readTextFile(dir, "chat_template.jinja"),
  };
  return new HfTokenizer(files);
}

/** The parsed files of a tokenizer folder (what `loadHfTokenizer` reads; tests may build one directly). */
export interface TokenizerFiles {
  dir: string;
  tokenizer: Json;
  config: Json;
  specialTokensMap: Json;
  generationConfig: Json;
  chatTemplateFile: string | undefined;
}

/** A loaded Hugging Face tokenizer; see the module header for how the special ids are chosen. */
export class HfTokenizer implements TextTokenizer {
  readonly dir: string;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number | undefined;
  readonly stopIds: readonly number[];
  /** The chat template, when the folder has one. */
  readonly chatTemplate: ChatTemplate | undefined;
  /** Present exactly when `chatTemplate` is (the TextTokenizer contract's optional method). */
  readonly applyChatTemplate?: (messages: readonly ChatMessage[], options: ChatTemplateOptions) => string;
  private readonly tokenizer: Tokenizer;
  private readonly specialIds: ReadonlySet<number>;
  private readonly cleanUpSpaces: boolean;

  constructor(files: TokenizerFiles) {
    this.dir = files.dir;
    const where = join(files.dir, "tokenizer.json");
    checkFileIds(files.tokenizer, where);
    try {
      // Older files may leave out added_tokens; the library iterates it unconditionally.
      this.tokenizer = new Tokenizer({ added_tokens: [], ...files.tokenizer }, files.config);
    } catch (e) {
      throw new TokenizerError(`${where}: not a tokenizer this loader can run: ${(e as Error).message}`);
    }
    this.vocabSize = largestId(this.tokenizer) + 1;
    if (this.vocabSize === 0) throw new TokenizerError(`${where}: the vocabulary is empty`);

    const named = resolveNamedTokens(this.tokenizer, files);
    const generation = generationIds(files, this.vocabSize);
    const eos = named.get("eos_token")?.id ?? generation.eos[0];
    if (eos === undefined) {
      throw new TokenizerError(`${files.dir}: no end-of-sequence token; set "eos_token" in tokenizer_config.json ` +
        `(or "eos_token_id" in generation_config.json)`);
    }
    this.eosId = eos;
    this.padId = named.get("pad_token")?.id ?? generation.pad ?? eos;
    this.bosId = named.get("bos_token")?.id;
    this.stopIds = [...new Set([eos, ...generation.eos])];
    this.specialIds = new Set([
      ...[...this.tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id),
      ...[...named.values()].map((t) => t.id),
    ]);
    this.cleanUpSpaces = files.config.clean_up_tokenization_spaces === true;
    this.chatTemplate = chatTemplateOf(files, named);
    const chat = this.chatTemplate;
    if (chat) this.applyChatTemplate = (messages, options) => chat.render(messages, options);
  }

  encode(text: string, options: EncodeOptions): number[] {
    if (typeof text !== "string") throw new TypeError(`encode: text must be a string (got ${typeof text})`);
    const { ids } = this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens });
    // A model without an unk token maps text it cannot split to undefined; never let that through.
    if (ids.some((id) => id === undefined)) {
      throw new TokenizerError(`${this.dir}: the text ${JSON.stringify(text.slice(0, 40))} has characters this tokenizer cannot encode and it has no unk_token`);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions): string {
    checkTokenIds(ids, this.vocabSize);
    let list = Array.from(ids);
    for (const id of list) {
      if (this.tokenizer.id_to_token(id) === undefined) throw new RangeError(`token id ${id} is not in the vocabulary of ${this.dir} (a gap between ids)`);
    }
    if (options.skipSpecialTokens) list = list.filter((id) => !this.specialIds.has(id));
    // The library refuses an empty list; its text is the empty string.
    if (list.length === 0) return "";
    return this.tokenizer.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The id of a token string (as it appears in tokenizer.json), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }
}

/** Ids a model here can have: its vocabulary is at most MODEL_LIMITS.vocab.max rows. */
const MAX_TOKEN_ID = MODEL_LIMITS.vocab.max - 1;

/**
 * Every id tokenizer.json assigns (model.vocab and added_tokens) must be an integer a model here
 * can embed. Checked on the parsed file before the library sees it: the library stores the
 * vocabulary as an array indexed by id, so an id of 1e9 would make every later walk over it
 * (listing the vocabulary, for one) step through a billion empty places before anything failed.
 */
function checkFileIds(tokenizer: Json, where: string): void {
  const refuse = (what: string, id: unknown): never => {
    throw new TokenizerError(`${where}: ${what} has id ${JSON.stringify(id)}; token ids must be integers 0..${MAX_TOKEN_ID} ` +
      `(the largest vocabulary a model here can have is ${MODEL_LIMITS.vocab.max})`);
  };
  const ok = (id: unknown) => Number.isInteger(id) && (id as number) >= 0 && (id as number) <= MAX_TOKEN_ID;
  const model = tokenizer.model;
  const vocab = typeof model === "object" && model !== null ? (model as Json).vocab : undefined;
  // Unigram lists [token, score] pairs, ids being their places; BPE and WordPiece map token → id.
  if (Array.isArray(vocab)) {
    if (vocab.length > MODEL_LIMITS.vocab.max) refuse(`model.vocab's last entry`, vocab.length - 1);
  } else if (typeof vocab === "object" && vocab !== null) {
    for (const [token, id] of Object.entries(vocab)) if (!ok(id)) refuse(`model.vocab token ${JSON.stringify(token.slice(0, 40))}`, id);
  }
  const added = tokenizer.added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) {
      const id = typeof t === "object" && t !== null ? (t as Json).id : undefined;
      if (!ok(id)) refuse(`added token ${JSON.stringify(String((t as Json)?.content ?? "").slice(0, 40))}`, id);
    }
  }
}

/** The largest id in the vocabulary, added tokens included (-1 when empty). */
function largestId(tokenizer: Tokenizer): number {
  let largest = -1;
  for (const id of tokenizer.get_vocab(true).values()) largest = Math.max(largest, id);
  return largest;
}

/** A special token the files name, with its id. */
interface NamedToken {
  content: string;
  id: number;
  file: string;
}

/**
 * The special tokens tokenizer_config.json (or else special_tokens_map.json) names, by name
 * (`eos_token`, …, and `additional_special_tokens.<i>`), each checked to be in the vocabulary.
 */
function resolveNamedTokens(tokenizer: Tokenizer, files: TokenizerFiles): Map<string, NamedToken> {
  const named = new Map<string, NamedToken>();
  const add = (name: string, value: unknown, file: string) => {
    const content = tokenContent(value, `${join(files.dir, file)} "${name}"`);
    if (content === undefined || named.has(name)) return;
    const id = tokenizer.token_to_id(content);
    if (id === undefined) {
      throw new TokenizerError(`${join(files.dir, file)}: ${name} ${JSON.stringify(content)} is not a token of tokenizer.json ` +
        `(neither in model.vocab nor in added_tokens)`);
    }
    named.set(name, { content, id, file });
  };
  for (const [source, file] of [[files.config, "tokenizer_config.json"], [files.specialTokensMap, "special_tokens_map.json"]] as const) {
    for (const name of SPECIAL_TOKEN_NAMES) add(name, source[name], file);
    const extra = source.additional_special_tokens;
    if (Array.isArray(extra)) extra.forEach((value, i) => add(`additional_special_tokens[${i}]`, value, file));
  }
  return named;
}

/** A special token's text: a string, an AddedToken object `{content}`, or null/absent (none). */
function tokenContent(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof (value as Json).content === "string") return (value as Json).content as string;
  throw new TokenizerError(`${where} must be a token string, an object with "content", or null (got ${JSON.stringify(value)})`);
}

/** generation_config.json's `eos_token_id` (an id or a list) and `pad_token_id`, each checked. */
function generationIds(files: TokenizerFiles, vocabSize: number): { eos: number[]; pad: number | undefined } {
  const where = join(files.dir, "generation_config.json");
  const check = (key: string, value: unknown): number => {
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) >= vocabSize) {
      throw new TokenizerError(`${where}: ${key} ${JSON.stringify(value)} is not a token id (integers 0..${vocabSize - 1})`);
    }
    return value as number;
  };
  const { eos_token_id: eos, pad_token_id: pad } = files.generationConfig;
  const eosList = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  return {
    eos: eosList.map((id) => check("eos_token_id", id)),
    pad: pad === undefined || pad === null ? undefined : check("pad_token_id", pad),
  };
}

/** The chat template: chat_template.jinja, else the config's string, else its list entry named "default". */
function chatTemplateOf(files: TokenizerFiles, named: Map<string, NamedToken>): ChatTemplate | undefined {
  const variables: Record<string, string> = {};
  for (const name of SPECIAL_TOKEN_NAMES) {
    const token = named.get(name);
    if (token) variables[name] = token.content;
  }
  if (files.chatTemplateFile !== undefined) return new ChatTemplate(files.chatTemplateFile, variables, join(files.dir, "chat_template.jinja"));
  const where = `${join(files.dir, "tokenizer_config.json")} chat_template`;
  const value = files.config.chat_template;
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return new ChatTemplate(value, variables, where);
  if (Array.isArray(value)) {
    const entry = value.find((t) => typeof t === "object" && t !== null && (t as Json).name === "default");
    if (entry && typeof (entry as Json).template === "string") return new ChatTemplate((entry as Json).template as string, variables, `${where} "default"`);
  }
  throw new TokenizerError(`${where} must be a template string or a list of {name, template} with one named "default" ` +
    `(got ${JSON.stringify(value).slice(0, 80)})`);
}

/** A JSON object file of the folder, undefined when absent; throws when it is not a JSON object. */
function readJsonFile(dir: string, name: string): Json | undefined {
  const text = readTextFile(dir, name);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${join(dir, name)} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerError(`${join(dir, name)} must hold a JSON object (got ${Array.isArray(value) ? "an array" : JSON.stringify(value)})`);
  }
  return value as Json;
}

function readTextFile(dir: string, name: string): string | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  try {
    return readRegularFile(path).toString("utf8");
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read it (${(e as Error).message})`);
  }
}
