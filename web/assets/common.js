// What every page shares: its settings, texts in English or Swedish, calls to the API, feedback beside the control
// a person used, the one place a problem is rendered, the sign-in and the organisation's branding.
// No inline script anywhere (the Content-Security-Policy forbids it): settings come from <meta name="sspr-config">.

export const config = JSON.parse(document.querySelector('meta[name="sspr-config"]').content);

// ---- Language: the one asked for (?lang= or a click), else the person's preference, else the browser's ----------
let texts = {};
const LANGUAGES = ["en", "sv"];
const CHOSEN_KEY = "sspr-lang";  // set only when a person clicks a language, never on a first visit
let preferred = null;            // the signed-in person's preferred language (token claim xms_pl)

function asked() {
  const query = new URLSearchParams(location.search).get("lang");
  return LANGUAGES.includes(query) ? query : null;
}

export function language() {
  const chosen = localStorage.getItem(CHOSEN_KEY);
  return asked() || (LANGUAGES.includes(chosen) ? chosen : null) || preferred || document.documentElement.lang || "en";
}

export function t(key, values = {}) {
  const text = texts[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

// A text with a number in it, in the right grammatical form: `<key>.one` or `<key>.other` (Intl.PluralRules).
export function tn(key, count, values = {}) {
  const form = new Intl.PluralRules(document.documentElement.lang || "en").select(count);
  const chosen = texts[`${key}.${form}`] !== undefined ? `${key}.${form}` : `${key}.other`;
  return t(chosen, { count, ...values });
}

export function applyTexts(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = t(title.dataset.i18n);
}

export async function setLanguage(lang, { remember = false } = {}) {
  const response = await fetch(`/api/pages/i18n/${lang}`);
  texts = await response.json();
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(CHOSEN_KEY, lang);
  applyTexts();
  document.querySelectorAll(".lang-switch button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
  clearFeedback();  // a message in the other language would be a message nobody asked for
  brandFor(lang);
  document.dispatchEvent(new CustomEvent("sspr:language", { detail: lang }));
}

// After sign-in: the person's own language, unless they asked for one on this page.
export async function preferLanguage(lang) {
  const mapped = (lang || "").toLowerCase().split("-")[0];
  if (!LANGUAGES.includes(mapped)) return;
  preferred = mapped;
  if (mapped !== document.documentElement.lang && language() === mapped) await setLanguage(mapped);
}

export async function startPage() {
  document.querySelectorAll(".lang-switch button").forEach((button) =>
    button.addEventListener("click", () => setLanguage(button.dataset.lang, { remember: true })));
  const session = currentSession();
  if (session?.lang) preferred = session.lang;
  await setLanguage(language());
}

// ---- The organisation's branding: its text, logo and colours in the page's language ------------------------------
async function brandFor(lang) {
  const css = document.querySelector("#brand-css");
  if (css && !css.href.endsWith(`lang=${lang}`)) css.href = `/api/pages/branding.css?lang=${lang}`;
  try {
    const brand = await (await fetch(`/api/pages/branding?lang=${lang}`)).json();
    const text = document.querySelector("#brand-text");
    if (text) { text.textContent = brand.signInText || ""; text.hidden = !brand.signInText; }
    const logo = document.querySelector("header img.brand-logo");
    if (logo && brand.logo) logo.src = brand.logo;
  } catch { /* the branding is a help to recognise the page; the page works without it */ }
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
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
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

// ---- Feedback where the eye is ---------------------------------------------------------------------------------
// A message shows in the part of the page the person acted in (the control's form or panel), in a live region, so
// it is seen without scrolling and heard with a screen reader. A new action clears every earlier message.
const ZONE = "[data-feedback-zone], form, .panel, section, main";

function zoneOf(control) {
  return (control && control.closest(ZONE)) || document.querySelector("main");
}

function regionIn(zone) {
  let region = [...zone.children].find((c) => c.classList?.contains("feedback"));
  if (!region) {
    region = el("div", { class: "feedback", hidden: true });
    zone.append(region);
  }
  return region;
}

export function clearFeedback() {
  document.querySelectorAll(".feedback").forEach((region) => { region.hidden = true; region.replaceChildren(); });
  document.querySelectorAll("[data-field-error]").forEach((p) => { p.hidden = true; p.textContent = ""; });
  document.querySelectorAll("[aria-invalid=true]").forEach((input) => input.removeAttribute("aria-invalid"));
  const pageError = document.querySelector("#error");
  if (pageError) { pageError.hidden = true; pageError.replaceChildren(); }
}

// A notice (something happened) beside `control`.
export function say(control, text) {
  const region = regionIn(zoneOf(control));
  region.className = "feedback notice";
  region.setAttribute("role", "status");
  region.replaceChildren(el("p", { text }));
  region.hidden = !text;
  if (text) region.scrollIntoView({ block: "nearest" });
  return region;
}

// The label a person reads for a field of the API's body, found by `data-field` or the map the page gives.
function fieldInput(field, zone, fields) {
  const found = fields?.[field];
  if (found) return typeof found === "string" ? document.querySelector(found) : found;
  return zone.querySelector(`[data-field="${CSS.escape(field)}"]`) || document.querySelector(`[data-field="${CSS.escape(field)}"]`);
}

function labelOf(input) {
  if (!input) return "";
  const label = input.id && document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
  return (label?.textContent || input.getAttribute("aria-label") || "").trim();
}

// The one place a problem is rendered: its title and detail (already in the person's language), and each field's
// plain words (`text`) beside that field, never the API's field names. Returns the region it wrote to.
export function renderProblem(control, error, { fields } = {}) {
  const problem = error?.problem || { title: t("error.generic") };
  const zone = zoneOf(control);
  const region = regionIn(zone);
  region.className = "feedback alert";
  region.setAttribute("role", "alert");
  const parts = [el("p", { text: problem.title || t("error.generic") })];
  if (problem.detail) parts.push(el("p", { text: problem.detail }));
  const listed = [];
  let first = null;
  for (const item of Array.isArray(problem.errors) ? problem.errors : []) {
    const words = item.text || t("error.field");
    const input = fieldInput(item.field, zone, fields);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const id = `${input.id || "field"}-error`;
      let note = document.getElementById(id);
      if (!note) {
        note = el("p", { id, class: "field-error", "data-field-error": item.field });
        input.insertAdjacentElement("afterend", note);
      }
      note.textContent = words;
      note.hidden = false;
      const described = new Set((input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
      described.add(id);
      input.setAttribute("aria-describedby", [...described].join(" "));
      first = first || input;
    }
    const label = labelOf(input);
    listed.push(el("li", { text: label ? `${label}: ${words}` : words }));
  }
  if (listed.length) parts.push(el("ul", {}, listed));
  region.replaceChildren(...parts);
  region.hidden = false;
  region.scrollIntoView({ block: "nearest" });
  if (first && control?.type === "submit") first.focus();
  return region;
}

// Kept for pages that show a problem in a region of their own: the region gets the same words.
export function showError(region, error) {
  region.replaceChildren();
  if (!error) { region.hidden = true; return; }
  const problem = error.problem || { title: t("error.generic") };
  region.append(el("p", { text: problem.title || t("error.generic") }));
  if (problem.detail) region.append(el("p", { text: problem.detail }));
  if (Array.isArray(problem.errors) && problem.errors.length) {
    region.append(el("ul", {}, problem.errors.map((e) => el("li", { text: e.text || t("error.field") }))));
  }
  region.hidden = false;
}

// An action of a person: earlier messages go, the control waits, a failure is told beside it (a session that has
// ended is told once, at the top, with a way to sign in again).
export async function act(control, work, options = {}) {
  clearFeedback();
  if (control) control.disabled = true;
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && currentSession(true)) sessionEnded();
    else renderProblem(control, error, options);
    return undefined;
  } finally {
    if (control) control.disabled = false;
  }
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
  sessionStorage.setItem("sspr-pkce", JSON.stringify({ verifier, state, nonce, hash: location.hash, search: location.search }));
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
    const kept = new URLSearchParams(pending?.search || "").get("lang");  // ?lang= asked before signing in
    history.replaceState(null, "", redirectUri() + (kept ? `?lang=${kept}` : "") + (pending?.hash || ""));
    if (params.has("error")) throw new ApiError(401, { title: t("signin.failed"), detail: params.get("error_description") });
    if (!pending || pending.state !== params.get("state")) throw new ApiError(401, { title: t("signin.failed") });
    const form = new URLSearchParams({
      grant_type: "authorization_code", client_id: config.clientId, code: params.get("code"),
      redirect_uri: redirectUri(), code_verifier: pending.verifier, scope: `openid profile ${config.apiScope}`,
    });
    const response = await fetch(`${config.authority}/oauth2/v2.0/token`, { method: "POST", body: form });
    const tokens = await response.json();
    if (!response.ok) throw new ApiError(401, { title: t("signin.failed"), detail: tokens.error_description });
    const id = tokens.id_token ? claimsOf(tokens.id_token) : {};
    if (tokens.id_token && id.nonce !== pending.nonce) throw new ApiError(401, { title: t("signin.failed") });
    const claims = claimsOf(tokens.access_token);
    // The person's preferred language, the optional claim xms_pl ("sv-se"), from the ID or the access token.
    const lang = (id.xms_pl || claims.xms_pl || "").split("-")[0] || null;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: tokens.access_token, exp: claims.exp,
      name: claims.name || claims.preferred_username, roles: claims.roles || [], lang }));
  }
  const session = currentSession();
  if (session?.lang) await preferLanguage(session.lang);
  return session;
}

// A page behind sign-in, started: its language, the sign-in finished (a failure told in #error), the signed-in or the
// signed-out part shown and the person named in #who; the session, or null.
export async function startSignedInPage() {
  await startPage();
  let session = null;
  try { session = await completeSignIn(); } catch (error) { showError($("#error"), error); }
  $("#signed-out").hidden = Boolean(session);
  $("#signed-in").hidden = !session;
  if (session) $("#who").textContent = session.name;
  return session;
}

export function currentSession(evenExpired = false) {
  const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  if (!session || (!evenExpired && session.exp * 1000 < Date.now() + 30000)) return null;
  return session;
}

// The service no longer accepts the token of this tab (it restarted, the token expired or was revoked): say so
// plainly, once, with a way to sign in again, instead of a bare 401.
export function sessionEnded() {
  sessionStorage.removeItem(SESSION_KEY);
  const box = document.querySelector("#session-ended");
  if (!box) { signOut(); return; }
  box.hidden = false;
  document.querySelectorAll("#signed-in").forEach((s) => { s.hidden = true; });
  document.querySelectorAll("#signed-out").forEach((s) => { s.hidden = false; });
  box.querySelector("button")?.focus();
}

export function signOut() { sessionStorage.removeItem(SESSION_KEY); location.assign(redirectUri() + location.search); }

document.addEventListener("DOMContentLoaded", () => {
  document.querySelector("#session-signin")?.addEventListener("click", () => signIn());
});
