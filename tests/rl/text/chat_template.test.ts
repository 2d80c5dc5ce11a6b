/** Chat templates: the fixture's ChatML template, transformers' variables, and errors. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ChatTemplate, ChatTemplateError, checkChatMessages, loadHfTokenizer } from "../../../runtime/rl/text/index.ts";

const tok = loadHfTokenizer(join(import.meta.dir, "..", "..", "fixtures", "tokenizer"));
const chat = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "What is 3 + 4?" },
];

describe("applyChatTemplate with the fixture's ChatML template", () => {
  test("renders each message, then the assistant's opening only when asked", () => {
    const body = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n";
    expect(tok.applyChatTemplate!(chat, { addGenerationPrompt: false })).toBe(body);
    expect(tok.applyChatTemplate!(chat, { addGenerationPrompt: true })).toBe(`${body}<|im_start|>assistant\n`);
  });

  test("the rendered prompt encodes its markers as the special ids", () => {
    const ids = tok.encode(tok.applyChatTemplate!(chat, { addGenerationPrompt: true }), { addSpecialTokens: false });
    expect(ids.filter((id) => tok.isSpecial(id)).map((id) => tok.decode([id], { skipSpecialTokens: false })))
      .toEqual(["<|im_start|>", "<|im_end|>", "<|im_start|>", "<|im_end|>", "<|im_start|>"]);
  });

  test("raise_exception in the template becomes a ChatTemplateError with its message", () => {
    expect(() => tok.applyChatTemplate!([{ role: "robot", content: "beep" }], { addGenerationPrompt: true }))
      .toThrow(/tokenizer_config\.json chat_template: rendering failed: Unknown role: robot/);
  });

  test("messages are checked first, naming the bad one", () => {
    const bad: [unknown, string][] = [
      ["hello", "chat messages must be a list of {role, content} objects (got a string)"],
      [[], "chat messages must hold at least one message (got an empty list)"],
      [[chat[0], "hi"], "chat message 1 must be an object {role, content} (got a string)"],
      [[{ role: "user" }], `chat message 0: "content" must be a string (got missing)`],
      [[{ role: 1, content: "x" }], `chat message 0: "role" must be a string (got a number)`],
      [[{ role: "user", content: [{ type: "text", text: "hi" }] }], `chat message 0: "content" must be a string (got an array)`],
    ];
    for (const [messages, message] of bad) {
      expect(() => checkChatMessages(messages)).toThrow(message);
      expect(() => tok.applyChatTemplate!(messages as never, { addGenerationPrompt: false })).toThrow(message);
    }
  });
});

describe("ChatTemplate", () => {
  test("passes bos_token and eos_token as transformers does, and leaves unset ones undefined", () => {
    const t = new ChatTemplate("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}" +
      "{% if pad_token is defined %}PAD{% endif %}", { bos_token: "<s>", eos_token: "</s>" }, "test template");
    expect(t.render([{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }], { addGenerationPrompt: false }))
      .toBe("<s>[user] hi</s>[assistant] yo</s>");
  });

  test("extra message keys reach the template", () => {
    const t = new ChatTemplate("{% for m in messages %}{{ m.name }}: {{ m.content }}{% endfor %}", {}, "test template");
    expect(t.render([{ role: "user", name: "Sam", content: "hi" }], { addGenerationPrompt: false })).toBe("Sam: hi");
  });

  test("errors name where the template came from", () => {
    expect(() => new ChatTemplate("{% if %}", {}, "models/x/chat_template.jinja")).toThrow(ChatTemplateError);
    expect(() => new ChatTemplate("{% if %}", {}, "models/x/chat_template.jinja")).toThrow("models/x/chat_template.jinja: the template does not parse");
    const failing = new ChatTemplate("{{ messages[0].content.nothing() }}", {}, "t.jinja");
    expect(() => failing.render([{ role: "user", content: "x" }], { addGenerationPrompt: false })).toThrow("t.jinja: rendering failed:");
  });
});
