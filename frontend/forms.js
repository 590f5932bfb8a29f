// Forms that create things through the JSON API (the Models pages' "Train" forms): the form's
// values as the API wants them, the API's field errors shown next to the fields, and the
// submit itself. `formValues` and `errorFields` are pure (tested in Node).

import { ApiError, postJSON } from "./api.js";
import { invalidFields, showFieldErrors } from "./dom.js";

/**
 * The named, non-empty values of form elements, trimmed: whole numbers for the names in
 * `ints`, numbers for those in `floats` (a value that is not one is sent as typed, for the
 * API to refuse next to its field), strings otherwise. Names in `skip` and unchecked boxes
 * are left out.
 * @param {Iterable<{name: string, value: string, type?: string, checked?: boolean}>} elements
 * @param {{ints?: Iterable<string>, floats?: Iterable<string>, skip?: Iterable<string>}} [kinds]
 */
export function formValues(elements, { ints = [], floats = [], skip = [] } = {}) {
  const [whole, real, skipped] = [new Set(ints), new Set(floats), new Set(skip)];
  const data = {};
  for (const element of elements) {
    if (!element.name || skipped.has(element.name) || typeof element.value !== "string") continue;
    if ((element.type === "checkbox" || element.type === "radio") && !element.checked) continue;
    const value = element.value.trim();
    if (value === "") continue;
    if (whole.has(element.name) && /^\d+$/.test(value)) data[element.name] = Number.parseInt(value, 10);
    else if (real.has(element.name) && Number.isFinite(Number(value))) data[element.name] = Number(value);
    else data[element.name] = value;
  }
  return data;
}

/**
 * An error of a submit as {field: [messages]} for a form with error slots for `slots`: the
 * API's field errors, those of fields without a slot folded into "__all__" as "name: message";
 * any other error is its message under "__all__".
 */
export function errorFields(error, slots) {
  const known = new Set(slots);
  const fields = error instanceof ApiError && Object.keys(error.fields).length ? { ...error.fields } : { __all__: [error.message] };
  const rest = Object.keys(fields).filter((name) => !known.has(name) && name !== "__all__");
  if (rest.length) fields.__all__ = [].concat(fields.__all__ ?? [], ...rest.map((name) => `${name}: ${[].concat(fields[name]).join(" ")}`));
  for (const name of rest) delete fields[name];
  return fields;
}

/**
 * POST a form's values as JSON on submit: the browser's own checks and `check()` first, then
 * the API's errors next to the fields; `onDone(answer)` once it succeeded. The submit button
 * is disabled while the request is in flight.
 * @param {HTMLFormElement} form  its error slots are elements with data-error-for.
 * @param {object} options
 * @param {string} options.url
 * @param {() => object} options.values  the body to send.
 * @param {() => object} [options.check]  {field: [messages]} of problems the browser cannot see.
 * @param {(answer: object) => void} options.onDone
 */
export function wireJSONForm(form, { url, values, check = () => ({}), onDone }) {
  const show = (fields) => showFieldErrors(form, fields);
  const slots = [...form.querySelectorAll("[data-error-for]")].map((slot) => slot.dataset.errorFor);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const invalid = invalidFields(form);
    const errors = { ...Object.fromEntries(invalid.map((element) => [element.name, [element.validationMessage]])), ...check() };
    if (Object.keys(errors).length) {
      show(errors);
      (invalid[0] ?? fieldOf(form, Object.keys(errors)[0]))?.focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const answer = await postJSON(url, values());
      show({});
      onDone(answer);
    } catch (error) {
      show(errorFields(error, slots));
      form.querySelector("[aria-invalid=true]")?.focus();
      submit.disabled = false;
    }
  });
}

/** The element (or the first of a group of checkboxes) named `name` in a form, or null. */
function fieldOf(form, name) {
  const item = form.elements.namedItem(name);
  return typeof item?.focus === "function" ? item : item?.[0] ?? null;
}
