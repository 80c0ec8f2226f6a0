// The locked-out user's page: username and proof-of-work, each method proven, a new password, what happens next.
import { $, api, ApiError, el, focusStep, showError, startPage, t } from "./common.js";

const steps = ["start", "method", "code", "questions", "password", "done", "blocked"];
const flow = { id: null, secret: null, methods: [], verified: [], required: 1, method: null, questions: false, codeLength: 8 };
const errorBox = $("#error");

function go(step) {
  for (const name of steps) $(`#step-${name}`).hidden = name !== step;
  focusStep($(`#step-${step}`));
}

function call(method, path, body) {
  return api(method, `reset/flows/${flow.id}${path}`, { body, headers: { "X-Flow-Secret": flow.secret } });
}

// Every failure in plain words; a user who cannot reset here is told why and where to get help.
function fail(error) {
  const problem = error instanceof ApiError ? error.problem : { title: t("error.generic") };
  // Blocked (too many codes or wrong answers): the same page as "cannot reset here", with until when (G5).
  if (problem.type === "urn:sspr:problem:cannot-reset-here" || problem.type === "urn:sspr:problem:blocked") {
    $("#blocked-detail").textContent = problem.detail || problem.title;
    const help = problem.helpdesk || {};
    const helpBox = $("#blocked-helpdesk");
    helpBox.replaceChildren();
    if (help.url) helpBox.append(t("reset.blocked.helpdesk"), " ", el("a", { href: help.url, text: help.url }));
    if (help.email) helpBox.append(" ", el("a", { href: `mailto:${help.email}`, text: help.email }));
    showError(errorBox, null);
    go("blocked");
    return;
  }
  if (problem.type === "urn:sspr:problem:flow-not-found") {
    problem.detail = problem.detail || t("reset.expired");
  }
  showError(errorBox, { problem });
  errorBox.focus?.();
}

async function busy(button, work) {
  button.disabled = true;
  try { await work(); } catch (error) { fail(error); } finally { button.disabled = false; }
}

// ---- 1. Start ------------------------------------------------------------------------------------------------
$("#start-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#start"), async () => {
    const username = $("#username").value.trim();
    const altcha = new FormData($("#start-form")).get("altcha");
    if (!username) throw new ApiError(400, { title: t("reset.start.missing") });
    if (!altcha) throw new ApiError(400, { title: t("reset.start.waitPow") });
    const { data } = await api("POST", "reset/flows", { body: { username, altcha } });
    Object.assign(flow, { id: data.flowId, secret: data.flowSecret, methods: data.methods, codeLength: data.codeLength });
    showError(errorBox, null);
    showMethods();
  });
});

// ---- 2. Choose a method and type the contact ---------------------------------------------------------------
function showMethods() {
  const box = $("#method-options");
  box.replaceChildren();
  const choices = flow.methods.filter((m) => !flow.verified.includes(m));
  if (flow.questions) choices.push("securityQuestions");
  choices.forEach((method, index) => {
    const input = el("input", { type: "radio", name: "method", value: method, id: `method-${method}`, checked: index === 0 });
    input.addEventListener("change", describeContact);
    box.append(el("label", { class: "inline", for: `method-${method}` }, input, el("span", { text: t(`method.${method}`) })));
  });
  $("#method-progress").textContent = flow.verified.length
    ? t("reset.method.second", { done: flow.verified.length, required: flow.required }) : "";
  describeContact();
  go("method");
}

function chosenMethod() { return new FormData($("#method-form")).get("method"); }

function describeContact() {
  const method = chosenMethod();
  const contact = $("#contact");
  $("#contact-field").hidden = method === "securityQuestions";
  contact.value = "";
  const kind = { email: "email", mobilePhone: "tel", officePhone: "tel" }[method] || "text";
  contact.type = kind;
  contact.inputMode = method === "authenticatorApp" ? "numeric" : "";
  $("#contact-label").textContent = t(`reset.contact.${method}`);
  $("#contact-hint").textContent = t(`reset.contactHint.${method}`);
  $("#send").textContent = t(method === "authenticatorApp" ? "reset.code.verify" : method === "securityQuestions" ? "reset.next" : "reset.method.send");
}

$("#method-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#send"), async () => {
    const method = chosenMethod();
    const value = $("#contact").value.trim();
    if (method === "securityQuestions") return showQuestions();
    if (!value) throw new ApiError(400, { title: t("reset.method.missing") });
    flow.method = method;
    if (method === "authenticatorApp") {
      const { data } = await call("POST", "/proofs", { method, code: value });
      return verified(data);
    }
    const body = { method, contact: value };
    if (method !== "email") body.defaultRegion = document.documentElement.lang === "sv" ? "SE" : null;
    if (body.defaultRegion === null) delete body.defaultRegion;
    const { data } = await call("POST", "/proofs", body);
    showError(errorBox, null);
    $("#code-sent").textContent = t("reset.code.sent", { length: data.codeLength, minutes: Math.round(data.expiresInSeconds / 60) });
    $("#code").value = "";
    $("#code").maxLength = data.codeLength;
    go("code");
  });
});

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
  showError(errorBox, null);
  $("#code-sent").textContent = t("reset.code.resent");
}));

$("#other-method").addEventListener("click", () => { showError(errorBox, null); showMethods(); });

function verified(state) {
  showError(errorBox, null);
  flow.verified = state.verified;
  flow.required = state.methodsRequired;
  if (state.next === "password") { go("password"); return; }
  flow.methods = state.methods;
  flow.questions = Boolean(state.questions);
  showMethods();
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
const ALLOWED = /^[A-Za-z0-9@#$%^&*\-_!+=[\]{}|\\:',.?/`~"();<> ]*$/;

function localRules(password, again) {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  return { length: password.length >= 8 && password.length <= 256, classes: classes >= 3,
           ascii: password.length > 0 && ALLOWED.test(password), match: password.length > 0 && password === again };
}

let checkTimer = null;
let checkSeq = 0;
function feedback() {
  const password = $("#password").value;
  const rules = localRules(password, $("#password2").value);
  document.querySelectorAll("#rules li").forEach((li) => {
    const ok = rules[li.dataset.rule];
    li.className = password ? (ok ? "ok" : "bad") : "";
    li.setAttribute("aria-label", `${li.textContent}: ${t(ok ? "rule.met" : "rule.unmet")}`);
  });
  clearTimeout(checkTimer);
  if (!password) { $("#server-failures").replaceChildren(); return; }
  // The server adds what only it knows (banned words, the user's own names): asked after a short pause.
  checkTimer = setTimeout(async () => {
    const seq = ++checkSeq;
    try {
      const { data } = await call("POST", "/password/check", { password });
      if (seq === checkSeq) renderServerFailures(data.failures || []);
    } catch { /* live feedback is a help, not a gate: the final answer comes from the reset itself */ }
  }, 350);
}

function renderServerFailures(failures) {
  $("#server-failures").replaceChildren(...failures.map((f) => el("li", { class: "bad", text: f.message })));
}

$("#password").addEventListener("input", feedback);
$("#password2").addEventListener("input", feedback);
$("#reveal").addEventListener("change", (event) => {
  for (const id of ["#password", "#password2"]) $(id).type = event.target.checked ? "text" : "password";
});

$("#password-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy($("#set-password"), async () => {
    const password = $("#password").value;
    const rules = localRules(password, $("#password2").value);
    if (!Object.values(rules).every(Boolean)) throw new ApiError(400, { title: t("reset.password.notYet") });
    try {
      const { data } = await call("POST", "/password", { password });
      $("#done-notified").textContent = data.notified?.length ? t("reset.done.mail", { to: data.notified.join(", ") }) : "";
      showError(errorBox, null);
      go("done");
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.problem.failures)) renderServerFailures(error.problem.failures);
      throw error;
    }
  });
});

document.addEventListener("sspr:language", (event) => {
  const widget = $("#pow");
  widget?.setAttribute("strings", JSON.stringify({
    label: t("altcha.label"), verified: t("altcha.verified"), verifying: t("altcha.verifying"),
    waitAlert: t("altcha.wait"), error: t("altcha.error"), expired: t("altcha.expired"), footer: "",
  }));
  if (!$("#step-method").hidden) describeContact();
  if (event.detail) feedback();
});

startPage();
