// What every page shares: its settings, texts in English or Swedish, calls to the API and the sign-in.
// No inline script anywhere (the Content-Security-Policy forbids it): settings come from <meta name="sspr-config">.

export const config = JSON.parse(document.querySelector('meta[name="sspr-config"]').content);

// ---- Texts ---------------------------------------------------------------------------------------------------
let texts = {};
const LANGUAGES = ["en", "sv"];

export function language() {
  const saved = localStorage.getItem("sspr-lang");
  return LANGUAGES.includes(saved) ? saved : document.documentElement.lang || "en";
}

export function t(key, values = {}) {
  const text = texts[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

export function applyTexts(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = t(title.dataset.i18n);
}

export async function setLanguage(lang) {
  const response = await fetch(`/api/pages/i18n/${lang}`);
  texts = await response.json();
  document.documentElement.lang = lang;
  localStorage.setItem("sspr-lang", lang);
  applyTexts();
  document.querySelectorAll(".lang-switch button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  document.dispatchEvent(new CustomEvent("sspr:language", { detail: lang }));
}

export async function startPage() {
  document.querySelectorAll(".lang-switch button").forEach((button) =>
    button.addEventListener("click", () => setLanguage(button.dataset.lang)));
  await setLanguage(language());
}

// ---- Small DOM helpers ---------------------------------------------------------------------------------------
export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function show(section, visible = true) { section.hidden = !visible; }

// Focus moves to a step's heading so that keyboard and screen-reader users land where the page changed.
export function focusStep(section) {
  const heading = section.querySelector("h2, h3, [tabindex='-1']");
  if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
}

// ---- The API -------------------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, { body, token, headers = {} } = {}) {
  const init = { method, headers: { "Accept": "application/json", "Accept-Language": language(), ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  let response;
  try {
    response = await fetch(`/api/${path}`, init);
  } catch {
    throw new ApiError(0, { title: t("error.network") });
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : { title: t("error.generic") });
  return { status: response.status, data, headers: response.headers };
}

// A failure in plain words: the API's localised title, its detail when it has one, and each field's message.
export function showError(region, error) {
  region.replaceChildren();
  if (!error) { region.hidden = true; return; }
  const problem = error.problem || { title: t("error.generic") };
  region.append(el("p", { text: problem.title || t("error.generic") }));
  if (problem.detail) region.append(el("p", { text: problem.detail }));
  if (Array.isArray(problem.errors) && problem.errors.length) {
    region.append(el("ul", {}, problem.errors.map((e) => el("li", { text: `${e.field}: ${e.message}` }))));
  }
  region.hidden = false;
}

// ---- Sign-in: authorization code + PKCE against the tenant's authority ------------------------------------
// MSAL.js refuses an authority that is not https (the dev emulator is plain http on 127.0.0.1), so the pages
// speak the two standard requests themselves: /authorize with an S256 challenge, then /token with the verifier.
const SESSION_KEY = "sspr-session";

function randomText(bytes) {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(raw);
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() { return `${location.origin}${location.pathname}`; }

export async function signIn(loginHint) {
  const verifier = randomText(32);
  const state = randomText(16);
  const nonce = randomText(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("sspr-pkce", JSON.stringify({ verifier, state, nonce, hash: location.hash }));
  const query = new URLSearchParams({
    client_id: config.clientId, response_type: "code", redirect_uri: redirectUri(), response_mode: "query",
    scope: `openid profile ${config.apiScope}`, state, nonce, code_challenge: challenge,
    code_challenge_method: "S256",
  });
  if (loginHint) query.set("login_hint", loginHint);
  location.assign(`${config.authority}/oauth2/v2.0/authorize?${query}`);
}

function claimsOf(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(decodeURIComponent(escape(atob(part))));
}

// After the authority sends the browser back: redeem the code once, keep the token for this tab only.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    const pending = JSON.parse(sessionStorage.getItem("sspr-pkce") || "null");
    sessionStorage.removeItem("sspr-pkce");
    history.replaceState(null, "", redirectUri() + (pending?.hash || ""));  // back to the section the user was on
    if (params.has("error")) throw new ApiError(401, { title: t("signin.failed"), detail: params.get("error_description") });
    if (!pending || pending.state !== params.get("state")) throw new ApiError(401, { title: t("signin.failed") });
    const form = new URLSearchParams({
      grant_type: "authorization_code", client_id: config.clientId, code: params.get("code"),
      redirect_uri: redirectUri(), code_verifier: pending.verifier, scope: `openid profile ${config.apiScope}`,
    });
    const response = await fetch(`${config.authority}/oauth2/v2.0/token`, { method: "POST", body: form });
    const tokens = await response.json();
    if (!response.ok) throw new ApiError(401, { title: t("signin.failed"), detail: tokens.error_description });
    if (tokens.id_token && claimsOf(tokens.id_token).nonce !== pending.nonce) throw new ApiError(401, { title: t("signin.failed") });
    const claims = claimsOf(tokens.access_token);
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: tokens.access_token, exp: claims.exp,
      name: claims.name || claims.preferred_username, roles: claims.roles || [] }));
  }
  return currentSession();
}

export function currentSession() {
  const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  if (!session || session.exp * 1000 < Date.now() + 30000) return null;
  return session;
}

export function signOut() { sessionStorage.removeItem(SESSION_KEY); location.assign(redirectUri()); }
