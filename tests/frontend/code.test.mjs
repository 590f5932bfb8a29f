import { test } from "node:test";
import assert from "node:assert/strict";
import { diffLines, diffStats, tokenizePython } from "../../frontend/code.js";

const PROGRAM = `def make_walker():\n    wc = walker_creator()  # build\n    for i in range(4):\n        wc.add_joint(1.5, "x")\n    return wc.get_walker()\n`;

test("tokens join back into the exact program text", () => {
  assert.equal(tokenizePython(PROGRAM).map((t) => t.text).join(""), PROGRAM);
});

test("keywords, names after def, builtins, numbers, strings and comments are told apart", () => {
  const typed = tokenizePython(PROGRAM).filter((t) => t.type !== "text");
  const of = (type) => typed.filter((t) => t.type === type).map((t) => t.text);
  assert.deepEqual(of("keyword"), ["def", "for", "in", "return"]);
  assert.deepEqual(of("def"), ["make_walker"]);
  assert.deepEqual(of("builtin"), ["range"]);
  assert.deepEqual(of("number"), ["4", "1.5"]);
  assert.deepEqual(of("string"), ['"x"']);
  assert.deepEqual(of("comment"), ["# build"]);
});

test("an unterminated string does not swallow the rest of the tokenizer", () => {
  const tokens = tokenizePython('x = "oops\ny = 2');
  assert.equal(tokens.map((t) => t.text).join(""), 'x = "oops\ny = 2');
  assert.ok(tokens.some((t) => t.type === "number" && t.text === "2"));
});

test("diff lines are classified as meta, hunk, added, removed or context", () => {
  const diff = "--- a/walker.py\n+++ b/walker.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n";
  assert.deepEqual(diffLines(diff).map((l) => l.kind), ["meta", "meta", "hunk", "context", "del", "add"]);
  assert.deepEqual(diffStats(diff), { added: 1, removed: 1 });
  assert.deepEqual(diffLines(""), []);
});
