/** How error messages name what they got instead of what they wanted. */

/** A value's kind for error messages: "a number", "an array", "null", "missing". */
export function describeValue(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "bigint") return "an integer";
  return `${typeof value === "object" ? "an" : "a"} ${typeof value}`;
}
