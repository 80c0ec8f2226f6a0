// The locked-out user's page: username and proof-of-work, each method proven, a new password, what happens next.
// The flow survives a reload for its lifetime (kept in this tab's sessionStorage) and Back goes one step back.
import { $, api, ApiError, clearFeedback, config, el, focusStep, renderProblem, say, startPage, t } from "./common.js";
import {
  newPasswordFields, notifiedText, passwordFeedback, passwordRules, proofOfWork, revealing, showServerFailures,
  showSessions, translateProofOfWork, untilSettled,
} from "./new-password.js";
import { usePasskey, wasCancelled } from "./passkeys.js";
import { defaultRegion, fillRegions } from "./phone-regions.js";

const steps = ["start", "method", "code", "questions", "password", "done", "unlocked", "blocked", "access-pass", "confirm"];
const FLOW_KEY = "sspr-reset-flow";
const fresh = () => ({ id: null, secret: null, expiresAt: 0, methods: [], contacts: {}, verified: [], required: 1,
  method: null, questions: false, codeLength: 8, codeSent: null, unlock: false,
  accessPass: { insteadOfPassword: false, afterPassword: false }, step: "start", helpdesk: null });
let flow = fresh();

// ---- Steps, history and the kept flow -----------------------------------------------------------------------
function keep() {
  if (flow.id && Date.now() < flow.expiresAt) sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  else sessionStorage.removeItem(FLOW_KEY);
}

function show(step) {
  for (const name of steps) $(`#step-${name}`).hidden = name !== step;
  flow.step = step;
  keep();
  focusStep($(`#step-${step}`));
}

// A new step is a new history entry, so Back goes to the step before, not away from the page.
function go(step) {
  clearFeedback();
  if (history.state?.step !== step) history.pushState({ step }, "", location.href);
  show(step);
  // A finished flow is not kept: except after the password, while a Temporary Access Pass may still be asked for.
  if (step === "unlocked" || step === "blocked" || step === "access-pass" ||
      (step === "done" && !flow.accessPass.afterPassword)) {
    sessionStorage.removeItem(FLOW_KEY);
  }
}

// Back and Forward move between the steps this flow has reached; the server keeps what was proven.
const REACHABLE = { start: () => !flow.id, method: () => Boolean(flow.id) && flow.step !== "password",
  code: () => Boolean(flow.id && flow.method && flow.codeSent), questions: () => Boolean(flow.id && flow.questions),
  password: () => flow.step === "password" };
window.addEventListener("popstate", (event) => {
  const step = event.state?.step;
  clearFeedback();
  if (!step || !REACHABLE[step] || !REACHABLE[step]()) { history.replaceState({ step: flow.step }, "", location.href); return; }
  if (step === "method") showMethods(false);
  if (step === "code") $("#code-sent").textContent = codeSentText();
  show(step);
});

function codeSentText() {
  return flow.codeSent ? t("reset.code.sent", flow.codeSent) : "";
}

// A reload (or Back into the page) carries on with the flow; opening the page anew starts a new one.
function carriedOn() {
  const navigation = performance.getEntriesByType("navigation")[0];
  return navigation?.type === "reload" || navigation?.type === "back_forward";
}

function restore() {
  if (!carriedOn()) { sessionStorage.removeItem(FLOW_KEY); return false; }
  const kept = JSON.parse(sessionStorage.getItem(FLOW_KEY) || "null");
  if (!kept || !kept.id || Date.now() >= kept.expiresAt) { sessionStorage.removeItem(FLOW_KEY); return false; }
  flow = kept;
  if (flow.step === "method") showMethods(false);
  if (flow.step === "code") $("#code-sent").textContent = codeSentText();
  if (flow.step === "questions") { showQuestions(); return true; }
  if (flow.step === "password") {
    $("#unlock-box").hidden = !flow.unlock;
    $("#access-pass-instead-box").hidden = !(flow.accessPass.insteadOfPassword || flow.helpdesk === "access-pass");
    showHelpdeskIntro();
  }
  history.replaceState({ step: flow.step }, "", location.href);
  show(flow.step);
  return true;
}

function call(method, path, body) {
  return api(method, `reset/flows/${flow.id}${path}`, { body, headers: { "X-Flow-Secret": flow.secret } });
}

// Every failure in plain words beside the button pressed; a person who cannot reset here is told why and where
// to get help, in the words of the problem itself.
function fail(control, error) {
  const problem = error instanceof ApiError ? { ...error.problem } : { title: t("error.generic") };
  if (problem.type === "urn:sspr:problem:cannot-reset-here" || problem.type === "urn:sspr:problem:blocked") {
    $("#blocked-detail").textContent = problem.detail || problem.title;
    const help = problem.helpdesk || {};
    const helpBox = $("#blocked-helpdesk");
    helpBox.replaceChildren();
    if (help.url) helpBox.append(t("reset.blocked.helpdesk"), " ", el("a", { href: help.url, text: help.url }));
    if (help.email) helpBox.append(" ", el("a", { href: `mailto:${help.email}`, text: help.email }));
    go("blocked");
    return;
  }
  if (problem.type === "urn:sspr:problem:flow-not-found") {
    problem.detail = problem.detail || t("reset.expired");
    sessionStorage.removeItem(FLOW_KEY);
  }
  if (problem.type === "urn:sspr:problem:code-not-accepted" && flow.method === "authenticatorApp") {
    problem.title = t("reset.app.notAccepted");  // an app code is never "sent again": a new one shows in the app
  }
  renderProblem(control, new ApiError(error?.status || 0, problem), { fields: { contact: "#contact", code: "#code" } });
}

async function busy(button, work) {
  clearFeedback();
  button.disabled = true;
  try { await work(); } catch (error) { fail(button, error); } finally { button.disabled = false; }
}

// ---- 1. Start ------------------------------------------------------------------------------------------------
$("#start-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#start"), async () => {
    const username = $("#username").value.trim();
    if (!username) throw new ApiError(400, { title: t("reset.start.missing") });
    const altcha = await proofOfWork($("#start-form"));
    if (!altcha) throw new ApiError(400, { title: t("reset.start.waitPow") });
    const { data } = await api("POST", "reset/flows", { body: { username, altcha } });
    flow = { ...fresh(), id: data.flowId, secret: data.flowSecret, methods: data.methods, codeLength: data.codeLength,
      expiresAt: Date.now() + data.expiresInSeconds * 1000, accessPass: data.accessPass || fresh().accessPass };
    showMethods(true);
  });
});

// ---- 2. Choose a method and type the contact ---------------------------------------------------------------
// Before a proof every user name gets the same choice (the policy's); after one, the person's own methods, each
// with its contact masked, as Entra shows them.
function methodLabel(method) {
  const contact = flow.contacts?.[method];
  return contact ? `${t(`method.${method}`)} · ${contact}` : t(`method.${method}`);
}

function showMethods(advance) {
  const box = $("#method-options");
  const before = new FormData($("#method-form")).get("method");
  box.replaceChildren();
  const choices = flow.methods.filter((m) => !flow.verified.includes(m));
  if (flow.questions) choices.push("securityQuestions");
  choices.forEach((method, index) => {
    const input = el("input", { type: "radio", name: "method", value: method, id: `method-${method}`,
      checked: before ? method === before : index === 0 });
    input.addEventListener("change", describeContact);
    box.append(el("label", { class: "inline", for: `method-${method}` }, input, el("span", { text: methodLabel(method) })));
  });
  if (!box.querySelector("input:checked")) box.querySelector("input")?.setAttribute("checked", "");
  $("#method-progress").textContent = flow.verified.length
    ? t("reset.method.second", { done: flow.verified.length, required: flow.required }) : "";
  describeContact();
  if (advance) go("method");
}

function chosenMethod() { return new FormData($("#method-form")).get("method"); }

function describeContact() {
  const method = chosenMethod();
  const contact = $("#contact");
  $("#contact-field").hidden = method === "securityQuestions" || method === "passkey";
  contact.value = "";
  const kind = { email: "email", mobilePhone: "tel", officePhone: "tel" }[method] || "text";
  contact.type = kind;
  contact.inputMode = method === "authenticatorApp" ? "numeric" : "";
  const phone = method === "mobilePhone" || method === "officePhone";
  $("#contact-region-field").hidden = !phone;
  if (phone) fillRegions($("#contact-region"), $("#contact-region").value || defaultRegion(null));
  $("#contact-label").textContent = t(`reset.contact.${method}`);
  $("#contact-hint").textContent = t(`reset.contactHint.${method}`);
  $("#send").textContent = t(method === "authenticatorApp" ? "reset.code.verify" : method === "securityQuestions" ? "reset.next"
    : method === "passkey" ? "reset.passkey.use" : "reset.method.send");
}

$("#method-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#send"), async () => {
    const method = chosenMethod();
    const value = $("#contact").value.trim();
    if (method === "securityQuestions") return showQuestions();
    if (method === "passkey") return provePasskey();
    if (!value) throw new ApiError(400, { title: t("reset.method.missing") });
    flow.method = method;
    if (method === "authenticatorApp") {
      const { data } = await call("POST", "/proofs", { method, code: value });
      return verified(data);
    }
    const body = { method, contact: value };
    if (method !== "email" && $("#contact-region").value) body.defaultRegion = $("#contact-region").value;
    const { data } = await call("POST", "/proofs", body);
    flow.codeSent = { length: data.codeLength, minutes: Math.round(data.expiresInSeconds / 60) };
    $("#code-sent").textContent = codeSentText();
    $("#code").value = "";
    $("#code").maxLength = data.codeLength;
    go("code");
  });
});

// A passkey proves possession in one step: no contact, no code (the device asks for its screen lock).
async function provePasskey() {
  flow.method = "passkey";
  const { data: request } = await call("POST", "/passkey/options");
  let credential;
  try { credential = await usePasskey(request.publicKey); }
  catch (error) {
    throw new ApiError(400, { title: t(wasCancelled(error) ? "reset.passkey.cancelled" : "reset.passkey.failed") });
  }
  const { data } = await call("POST", "/passkey", { credential });
  verified(data);
}

// ---- 3. The code -------------------------------------------------------------------------------------------
$("#code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#verify"), async () => {
    const code = $("#code").value.replace(/\s+/g, "");
    if (!code) throw new ApiError(400, { title: t("reset.code.missing") });
    const { data } = await call("POST", `/proofs/${flow.method}/code`, { code });
    verified(data);
  });
});

$("#resend").addEventListener("click", () => busy($("#resend"), async () => {
  await call("POST", `/proofs/${flow.method}/resend`);
  say($("#resend"), t("reset.code.resent"));
}));

$("#other-method").addEventListener("click", () => { clearFeedback(); showMethods(true); });

function verified(state) {
  flow.verified = state.verified;
  flow.required = state.methodsRequired;
  flow.codeSent = null;
  flow.unlock = Boolean(state.unlock);
  if (state.next === "password") {
    $("#unlock-box").hidden = !flow.unlock;
    $("#access-pass-instead-box").hidden = !flow.accessPass.insteadOfPassword;
    go("password");
    return;
  }
  flow.methods = state.methods;
  flow.contacts = state.contacts || {};
  flow.questions = Boolean(state.questions);
  showMethods(true);
}

// ---- 4. Security questions (second method only) ------------------------------------------------------------
async function showQuestions() {
  const { data } = await call("GET", "/questions");
  const box = $("#question-fields");
  box.replaceChildren();
  data.questions.forEach((q, i) => {
    box.append(el("label", { for: `answer-${i}`, text: q.text }),
      el("input", { id: `answer-${i}`, type: "text", "data-question": q.id, autocomplete: "off", maxlength: "40" }));
  });
  go("questions");
}

$("#questions-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#answer"), async () => {
    const answers = {};
    document.querySelectorAll("#question-fields input").forEach((input) => { answers[input.dataset.question] = input.value; });
    const { data } = await call("POST", "/questions", { answers });
    verified(data);
  });
});

// ---- 5. The new password, with live feedback on each rule ------------------------------------------------
newPasswordFields($("#new-password"), { label: ["reset.password.label", "New password"] });
const localRules = () => passwordRules($("#password").value, $("#password2").value);
// The server adds what only it knows (banned words, the user's own names).
const feedback = passwordFeedback(localRules, async (password) => {
  const { data } = await call("POST", "/password/check", { password });
  return data.failures || [];
});

$("#password").addEventListener("input", feedback.update);
$("#password2").addEventListener("input", feedback.update);
revealing(["#password", "#password2"]);

$("#password-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#set-password"), async () => {
    feedback.settle();
    const password = $("#password").value;
    if (!Object.values(localRules()).every(Boolean)) throw new ApiError(400, { title: t("reset.password.notYet") });
    try {
      finished(await settled(await call("POST", "/password", { password })));
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.problem.failures)) showServerFailures(error.problem.failures);
      throw error;
    }
  });
});

// On-premises AD may take a moment: ask about this flow's change until its verdict is in.
async function settled(response) {
  $("#unlock").disabled = response.status === 202;  // one change at a time: the other choice waits for this verdict
  try {
    return await untilSettled(response, () => call("GET", "/password"));
  } finally {
    $("#unlock").disabled = false;
  }
}

function finished(data) {
  const notified = notifiedText(data);
  if (data.unlocked) {
    $("#unlocked-notified").textContent = notified;
    go("unlocked");
  } else {
    $("#done-notified").textContent = notified;
    showSessions(data);
    $("#access-pass-after-box").hidden = !flow.accessPass.afterPassword;
    go("done");
  }
}

$("#unlock").addEventListener("click", () => busy($("#unlock"), async () => {
  finished(await settled(await call("POST", "/unlock")));
}));

// ---- 6. A Temporary Access Pass, instead of the password or after it: shown once, never kept by the page ------
async function getAccessPass(button) {
  await busy(button, async () => {
    const { data } = await call("POST", "/access-pass");
    $("#access-pass").textContent = data.temporaryAccessPass;
    const until = new Date(data.expiresAt).toLocaleString(document.documentElement.lang);
    $("#access-pass-validity").textContent = t(data.usableOnce ? "reset.accessPass.validOnce" : "reset.accessPass.valid",
                                               { until });
    $("#access-pass-password").textContent = data.passwordReset ? t("reset.accessPass.passwordToo") : t("reset.accessPass.passwordKept");
    go("access-pass");
  });
}
$("#access-pass-instead").addEventListener("click", (event) => getAccessPass(event.currentTarget));
$("#access-pass-after").addEventListener("click", (event) => getAccessPass(event.currentTarget));

document.addEventListener("sspr:language", (event) => {
  translateProofOfWork();
  if (!$("#step-method").hidden) showMethods(false);
  if (!$("#step-code").hidden) $("#code-sent").textContent = codeSentText();
  if (event.detail) feedback.update();
});

// ---- A helpdesk's one-time link: #link=<token> opens the user's flow at the password step -------------------------
// The token is in the fragment, which the browser never sends to a server; it leaves the address bar at once, so
// Back, a bookmark or a shared screen does not keep it. The link works once (shared/domain/helpdesk_links.py).
async function fromHelpdesk() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("confirm")) { confirmToHelpdesk(fragment.get("confirm")); return true; }
  const token = fragment.get("link");
  if (!token) return false;
  history.replaceState({ step: "password" }, "", `${location.pathname}${location.search}`);
  $("#step-start").hidden = true;
  try {
    const { data } = await api("POST", "reset/links", { body: { link: token } });
    flow = { ...fresh(), id: data.flowId, secret: data.flowSecret, unlock: Boolean(data.unlock),
             expiresAt: Date.now() + data.expiresInSeconds * 1000, helpdesk: data.next };
    $("#unlock-box").hidden = !flow.unlock;
    $("#access-pass-instead-box").hidden = data.next !== "access-pass";
    showHelpdeskIntro();
    show("password");
  } catch (error) {
    history.replaceState({ step: "start" }, "", location.href);
    show("start");
    fail($("#start"), error);
  }
  return true;
}

function showHelpdeskIntro() {
  const intro = $("#link-intro");
  intro.dataset.i18n = flow.helpdesk === "access-pass" ? "reset.link.accessPassIntro" : "reset.link.intro";
  intro.textContent = t(intro.dataset.i18n);
  intro.hidden = !flow.helpdesk;
}

// ---- A helpdesk's passkey confirmation: #confirm=<verification> asks the user to confirm with their own passkey ----
function confirmToHelpdesk(verification) {
  $("#step-start").hidden = true;
  for (const name of steps) $(`#step-${name}`).hidden = name !== "confirm";
  focusStep($("#step-confirm"));
  $("#confirm-passkey").addEventListener("click", () => busy($("#confirm-passkey"), async () => {
    const base = `helpdesk/confirmations/${encodeURIComponent(verification)}`;
    const { data: request } = await api("POST", `${base}/options`);
    let credential;
    try { credential = await usePasskey(request.publicKey); }
    catch (error) {
      throw new ApiError(400, { title: t(wasCancelled(error) ? "reset.passkey.cancelled" : "reset.passkey.failed") });
    }
    await api("POST", base, { body: { credential } });
    $("#confirm-passkey").hidden = true;
    $("#confirm-done").hidden = false;
  }));
}

document.querySelectorAll("a.signin-link").forEach((link) => { link.href = config.signInUrl || link.href; });

(async () => {
  await startPage();
  if (await fromHelpdesk()) return;
  if (!restore()) history.replaceState({ step: "start" }, "", location.href);
})();
