/**
 * Chat templates: a model's Jinja template (tokenizer_config.json `chat_template`) that turns a
 * list of messages into the exact prompt text the model was tuned on. Rendered with
 * @huggingface/jinja and the variables transformers' `apply_chat_template` passes: `messages`,
 * `add_generation_prompt`, the special tokens by name (`bos_token`, `eos_token`, …), and the
 * globals `raise_exception(message)` and `strftime_now(format)`.
 *
 * @example
 * ```ts
 * const chat = new ChatTemplate(source, { eos_token: "<|im_end|>" }, "tokenizer_config.json chat_template");
 * chat.render([{ role: "user", content: "2+2?" }], { addGenerationPrompt: true });
 * ```
 */
import { Template } from "@huggingface/jinja";
import { describeValue } from "../../core/describe_value.ts";

/** One turn of a conversation. Extra keys (name, tool calls…) reach the template untouched. */
export interface ChatMessage {
  role: string;
  content: string;
  readonly [extra: string]: unknown;
}

/** How a conversation is rendered. */
export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn, so the model's next tokens are its answer. */
  addGenerationPrompt: boolean;
}

/** A chat template that does not parse, or failed (or called `raise_exception`) while rendering. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

/** A parsed chat template with the special tokens it may refer to. */
export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param source the Jinja text
   * @param specialTokens template variables such as `bos_token` and `eos_token` (only those the tokenizer has)
   * @param origin where the template came from, for error messages
   */
  constructor(readonly source: string, private readonly specialTokens: Readonly<Record<string, string>>, readonly origin: string) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`${origin}: the template does not parse: ${(e as Error).message}`);
    }
  }

  /** The prompt text of `messages`; throws a ChatTemplateError on a bad message or a failed render. */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions): string {
    checkChatMessages(messages);
    try {
      return this.template.render({ ...this.specialTokens, messages, add_generation_prompt: options.addGenerationPrompt });
    } catch (e) {
      // raise_exception(message) throws a plain Error carrying the template's own message.
      throw new ChatTemplateError(`${this.origin}: rendering failed: ${(e as Error).message}`);
    }
  }
}

/**
 * Throws a TypeError unless `value` is a non-empty list of `{role: string, content: string}`
 * objects; the message names the first bad message by index. Content given as a list of parts
 * (images, tool results) is not a text prompt and is refused.
 */
export function checkChatMessages(value: unknown): asserts value is ChatMessage[] {
  if (!Array.isArray(value)) throw new TypeError(`chat messages must be a list of {role, content} objects (got ${describeValue(value)})`);
  if (value.length === 0) throw new TypeError("chat messages must hold at least one message (got an empty list)");
  value.forEach((message: unknown, i) => {
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw new TypeError(`chat message ${i} must be an object {role, content} (got ${describeValue(message)})`);
    }
    for (const key of ["role", "content"] as const) {
      const field = (message as Record<string, unknown>)[key];
      if (typeof field !== "string") throw new TypeError(`chat message ${i}: "${key}" must be a string (got ${describeValue(field)})`);
    }
  });
}
