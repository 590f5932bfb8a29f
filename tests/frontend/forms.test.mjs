import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError } from "../../frontend/api.js";
import { errorFields, formValues } from "../../frontend/forms.js";

const field = (name, value, extra = {}) => ({ name, value, ...extra });

test("form values are trimmed, typed by kind and left out when empty", () => {
  const elements = [
    field("name", "  first  "), field("iterations", "12"), field("minutes", "2.5"), field("samples", ""),
    field("terrain_set", "walls-bumpy"), { name: "", value: "submit" }, { tagName: "FIELDSET" },
  ];
  assert.deepEqual(formValues(elements, { ints: ["iterations", "samples"], floats: ["minutes"] }),
    { name: "first", iterations: 12, minutes: 2.5, terrain_set: "walls-bumpy" });
});

test("a number field that does not hold a number is sent as typed, for the API to refuse", () => {
  assert.deepEqual(formValues([field("iterations", "1.5"), field("minutes", "soon")], { ints: ["iterations"], floats: ["minutes"] }),
    { iterations: "1.5", minutes: "soon" });
});

test("skipped names and unchecked boxes are left out of the values", () => {
  const elements = [field("runs", "3", { type: "checkbox", checked: true }), field("keep", "yes", { type: "checkbox", checked: false })];
  assert.deepEqual(formValues(elements, { skip: ["runs"] }), {});
  assert.deepEqual(formValues([field("keep", "yes", { type: "checkbox", checked: true })]), { keep: "yes" });
});

test("the API's field errors go next to their fields and the rest under the form", () => {
  const error = new ApiError(400, { error: "invalid input", fields: { batch_size: ["at least 3"], base: ["gone"] } });
  assert.deepEqual(errorFields(error, ["batch_size", "__all__"]), { batch_size: ["at least 3"], __all__: ["base: gone"] });
});

test("an error without fields is shown under the form", () => {
  assert.deepEqual(errorFields(new ApiError(409, { error: "model 3 is training" }), ["__all__"]), { __all__: ["model 3 is training"] });
  assert.deepEqual(errorFields(new Error("offline"), []), { __all__: ["offline"] });
});
