// The JSON API (/api/...) from pages: same-origin session, CSRF token on unsafe methods, and
// errors as ApiError carrying the API's {"error", "fields"}.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.fields = body?.fields ?? {};
  }
}

function cookie(name) {
  const match = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return match ? decodeURIComponent(match[1]) : null;
}

let token = null;

async function csrfToken() {
  token = token ?? cookie("csrftoken");
  if (!token) token = (await getJSON("/api/csrf")).csrf_token;
  return token;
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { error: `the server answered ${response.status} without JSON` };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** GET a JSON answer. @throws {ApiError} */
export async function getJSON(path, { signal } = {}) {
  return answer(await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" }, signal }));
}

/** POST a JSON body with the CSRF token. @throws {ApiError} */
export async function postJSON(path, data = {}) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": await csrfToken() },
    body: JSON.stringify(data),
  });
  return answer(response);
}
