/** Text for the RL application: the tokenizer contract, Hugging Face tokenizer folders, chat templates. */
export { checkTokenIds, TokenizerError, type DecodeOptions, type EncodeOptions, type TextTokenizer } from "./tokenizer.ts";
export { HfTokenizer, loadHfTokenizer } from "./hf_tokenizer.ts";
export { ChatTemplate, ChatTemplateError, checkChatMessages, type ChatMessage, type ChatTemplateOptions } from "./chat_template.ts";
