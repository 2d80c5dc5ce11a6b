/**
 * The built-in `exact_match` reward: 1 when the response, normalised, equals the answer,
 * normalised; 0 otherwise. Normalisation is deliberately light, so "exact" keeps its meaning:
 * Unicode NFC (the same letters typed two ways compare equal), Windows line ends read as "\n",
 * and surrounding whitespace trimmed. Case, inner spacing and punctuation all count.
 */

/** The text `exactMatchReward` compares. */
export function normalizeExactMatch(text: string): string {
  return text.normalize("NFC").replaceAll("\r\n", "\n").trim();
}

/**
 * The `exact_match` reward: 1 or 0.
 *
 * @example
 * ```ts
 * exactMatchReward("2+2=", " 4\n", "4"); // 1
 * ```
 */
export function exactMatchReward(_prompt: string, response: string, answer: string): number {
  return normalizeExactMatch(response) === normalizeExactMatch(answer) ? 1 : 0;
}
