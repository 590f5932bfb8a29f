// Program text for people: a small Python tokenizer for highlighting and a unified-diff line
// classifier. Enough for walker programs; not a full Python lexer. No DOM.

const KEYWORDS = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield".split(" "),
);
const BUILTINS = new Set("abs all any dict enumerate float int len list max min print range round sum tuple zip".split(" "));

const PATTERN = new RegExp(
  [
    String.raw`(?<comment>#[^\n]*)`,
    String.raw`(?<string>[rRbBuUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?))`,
    String.raw`(?<number>\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\b)`,
    String.raw`(?<name>[A-Za-z_][A-Za-z0-9_]*)`,
  ].join("|"),
  "g",
);

/**
 * Split Python text into tokens that concatenate back to it exactly.
 * @returns {Array<{type: "comment"|"string"|"number"|"keyword"|"builtin"|"def"|"name"|"text", text: string}>}
 *   "def" is the name right after `def` or `class`.
 */
export function tokenizePython(text) {
  const tokens = [];
  let at = 0;
  let afterDef = false;
  for (const match of text.matchAll(PATTERN)) {
    if (match.index > at) tokens.push({ type: "text", text: text.slice(at, match.index) });
    const groups = match.groups;
    let type = Object.keys(groups).find((k) => groups[k] !== undefined);
    const word = match[0];
    if (type === "name") {
      if (afterDef) type = "def";
      else if (KEYWORDS.has(word)) type = "keyword";
      else if (BUILTINS.has(word)) type = "builtin";
      afterDef = word === "def" || word === "class";
    } else {
      afterDef = false;
    }
    tokens.push({ type, text: word });
    at = match.index + word.length;
  }
  if (at < text.length) tokens.push({ type: "text", text: text.slice(at) });
  return tokens;
}

/**
 * Classify the lines of a unified diff.
 * @returns {Array<{kind: "meta"|"hunk"|"add"|"del"|"context", text: string}>}
 */
export function diffLines(diff) {
  if (!diff) return [];
  const lines = diff.replace(/\n$/, "").split("\n");
  return lines.map((text) => {
    if (text.startsWith("+++") || text.startsWith("---") || text.startsWith("diff ") || text.startsWith("index ")) return { kind: "meta", text };
    if (text.startsWith("@@")) return { kind: "hunk", text };
    if (text.startsWith("+")) return { kind: "add", text };
    if (text.startsWith("-")) return { kind: "del", text };
    return { kind: "context", text };
  });
}

/** Lines added and removed by a diff: {added, removed}. */
export function diffStats(diff) {
  let added = 0;
  let removed = 0;
  for (const { kind } of diffLines(diff)) {
    if (kind === "add") added += 1;
    if (kind === "del") removed += 1;
  }
  return { added, removed };
}
