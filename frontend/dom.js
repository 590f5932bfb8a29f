// Small DOM helpers shared by the pages: highlighted code, coloured diffs, run controls.

import { postJSON } from "./api.js";
import { diffLines, tokenizePython } from "./code.js";
import { buttonStates } from "./controls.js";

/** Replace a <pre><code> text with highlighted spans (the text itself is unchanged). */
export function highlightCode(pre) {
  const code = pre.querySelector("code") ?? pre;
  const parts = tokenizePython(code.textContent).map(({ type, text }) => {
    if (type === "text" || type === "name") return document.createTextNode(text);
    const span = document.createElement("span");
    span.className = `t-${type}`;
    span.textContent = text;
    return span;
  });
  code.replaceChildren(...parts);
}

/** Colour a <pre><code> unified diff line by line. */
export function colourDiff(pre) {
  const code = pre.querySelector("code") ?? pre;
  const lines = diffLines(code.textContent);
  if (!lines.length || !lines.some((l) => l.kind !== "context")) return;
  code.replaceChildren(
    ...lines.map(({ kind, text }) => {
      const span = document.createElement("span");
      span.className = `d-${kind}`;
      span.textContent = text || " ";
      return span;
    }),
  );
}

/** Enable exactly the buttons[data-action] valid for `status` inside `root`. */
export function setControls(root, status, canControl = true) {
  const states = buttonStates(status, canControl);
  for (const button of root.querySelectorAll("button[data-action]")) {
    button.disabled = !states[button.dataset.action];
  }
}

/**
 * Make root's buttons[data-action] POST /api/runs/<id>/<action>; onRun(run) gets the answer,
 * onError(message) the API's error. Buttons are disabled while the request is in flight.
 */
export function wireControls(root, runId, { onRun, onError }) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !root.contains(button) || button.disabled) return;
    const buttons = [...root.querySelectorAll("button[data-action]")];
    const before = buttons.map((b) => b.disabled);
    buttons.forEach((b) => { b.disabled = true; });
    try {
      onRun(await postJSON(`/api/runs/${runId}/${button.dataset.action}`));
    } catch (error) {
      buttons.forEach((b, i) => { b.disabled = before[i]; });
      onError(error.message);
    }
  });
}

/** Set a status badge's text and data-status. */
export function setStatus(element, status) {
  if (element.textContent !== status) element.textContent = status;
  element.dataset.status = status;
}

/** The parsed JSON of a json_script element, or null. */
export function pageData(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

/**
 * Show `fields` ({name: [messages]}) in a form's error slots (elements with `data-error-for`),
 * marking the inputs aria-invalid and opening a collapsed <details> that holds an error.
 */
export function showFieldErrors(form, fields) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    const name = slot.dataset.errorFor;
    const messages = fields[name];
    slot.textContent = messages ? [].concat(messages).join(" ") : "";
    if (messages) slot.closest("details")?.setAttribute("open", "");
    const input = form.elements.namedItem(name); // a group of checkboxes has no setAttribute
    if (input && input.setAttribute) {
      if (messages) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }
}

/** The fields of a form that fail the browser's own checks (types, bounds), in order. */
export function invalidFields(form) {
  return [...form.elements].filter((element) => element.name && element.willValidate && !element.checkValidity());
}
