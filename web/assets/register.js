// The signed-in user's page: see my methods and status, add and verify each method, reconfirm, remove.
// Every message shows in the panel the person is working in (act/say/renderProblem in common.js).
import { $, act, api, ApiError, el, focusStep, say, signIn, signOut, startSignedInPage, t, tn } from "./common.js";
import { defaultRegion, fillRegions } from "./phone-regions.js";
import { renderPasskeys, setupPasskeys } from "./register-passkeys.js";

let session = null;
let view = null;
let challenge = null;
const CODE_METHODS = [["email", "address"], ["mobilePhone", "number"], ["officePhone", "number"]];

const call = (method, path, body) => api(method, `me/security-info${path}`, { body, token: session.token });

async function load() {
  view = (await call("GET", "")).data;
  render();
}

function render() {
  if (!view) return;
  const status = view.status;
  const usable = status.usableMethods.length;
  $("#status").replaceChildren(...[
    view.cannotReset ? cannotReset(view.cannotReset) : el("p", { id: "status-registered",
      text: status.registered ? t("register.registered") : tn("register.notRegistered", status.requiredCount) }),
    el("p", { text: t("register.usable", { usable: tn("register.usableMethods", usable), required: status.requiredCount }) }),
    status.reconfirmDue ? el("p", { text: t("register.reconfirmDue") }) : null,
  ].filter(Boolean));
  $("#reconfirm").hidden = !view.methods.length;  // nothing to confirm before a method is registered
  // Methods registered in the user's Microsoft (Entra) account count too; they are changed there, not here.
  const entra = (view.entraMethods || []).map((m) => el("tr", { "data-entra-method": m.method },
    el("td", { "data-label": t("register.col.method"), text: t(`method.${m.method}`) }),
    el("td", { "data-label": t("register.col.contact"), text: m.contact || "" }),
    el("td", { "data-label": t("register.col.added"), text: t("register.fromMicrosoft") }), el("td", {})));
  if (!view.methods.length && !entra.length) {
    $("#methods").replaceChildren(el("tr", {}, el("td", { colspan: "4", class: "hint", text: t("register.noMethods") })));
  } else $("#methods").replaceChildren(...entra, ...view.methods.map((m) => el("tr", { "data-method": m.method },
    el("td", { "data-label": t("register.col.method"), text: t(`method.${m.method}`) }),
    el("td", { "data-label": t("register.col.contact"), text: m.contact || "" }),
    el("td", { "data-label": t("register.col.added"), text: new Date(m.registeredAt).toLocaleDateString(document.documentElement.lang) }),
    el("td", { class: "actions" }, el("button", { type: "button", class: "secondary", "data-remove": m.method, text: t("register.remove"),
      "aria-label": `${t("register.remove")} ${t(`method.${m.method}`)}`, onclick: (e) => remove(e.currentTarget, m.method) })))));
  for (const method of ["email", "mobilePhone", "officePhone", "authenticatorApp", "securityQuestions", "passkey"]) {
    $(`#add-${method}`).hidden = !view.allowedMethods.includes(method);
  }
  renderPasskeys(view);
  for (const method of ["mobilePhone", "officePhone"]) {
    const select = $(`#${method}-region`);
    fillRegions(select, select.value || defaultRegion(view.defaultRegion));
  }
  $("#unavailable").replaceChildren(...(view.unavailableMethods || []).map((u) => el("p", { text: `${t(`method.${u.method}`)}: ${u.reason}` })));
}

// Registering cannot make this person able to reset here (a synced account the service cannot change, a tenant on
// trial, SSPR not on for them): say so, and whom to ask, instead of "you can reset your password yourself".
function cannotReset({ reason, helpdesk }) {
  const help = [];
  if (helpdesk.url) help.push(" ", el("a", { href: helpdesk.url, text: helpdesk.url }));
  if (helpdesk.email) help.push(" ", el("a", { href: `mailto:${helpdesk.email}`, text: helpdesk.email }));
  return el("div", { id: "status-cannot-reset", role: "note", "data-reason": reason },
    el("p", { text: t(`register.cannotReset.${reason}`) }),
    help.length ? el("p", {}, t("register.cannotReset.helpdesk"), ...help) : null);
}

async function remove(button, method) {
  const name = t(`method.${method}`);
  await act(button, async () => {
    try {
      await call("DELETE", `/${method}`);
    } catch (error) {
      // Removing a method that leaves too few asks first; the person confirms in plain words.
      if (!(error instanceof ApiError) || error.status !== 409 || !window.confirm(error.problem.title)) throw error;
      await call("DELETE", `/${method}?confirm=true`);
    }
    await load();
    say($("#methods").closest("[data-feedback-zone]"), t("register.removed", { method: name }));
  });
}

// ---- Email and phones: a code to the contact proves it; the code is typed in the same panel ----------------
for (const [method, field] of CODE_METHODS) {
  $(`#${method}-form`).addEventListener("submit", (event) => {
    event.preventDefault();
    const button = $(`#${method}-send`);
    act(button, async () => {
      const value = $(`#${method}`).value.trim();
      if (!value) throw new ApiError(400, { title: t("reset.method.missing"), errors: [{ field, text: t("field.empty") }] });
      const body = { [field]: value };
      if (field === "number" && $(`#${method}-region`).value) body.defaultRegion = $(`#${method}-region`).value;
      challenge = (await call("POST", `/${method}`, body)).data;
      const panel = $(`#add-${method}`);
      panel.append($("#verify"));
      $("#verify-sent").textContent = "";
      $("#verify-code").value = "";
      $("#verify").hidden = false;
      say(button, t("register.codeSent", { contact: challenge.contact }));
      $("#verify-code").focus();
    }, { fields: { [field]: `#${method}`, defaultRegion: `#${method}-region` } });
  });
}

$("#verify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("#verify-submit"), async () => {
    await call("POST", `/challenges/${challenge.challengeId}/verify`, { code: $("#verify-code").value.trim() });
    $("#verify").hidden = true;
    $(`#${challenge.method}`).value = "";
    await load();
    say($(`#add-${challenge.method}`), t("register.added", { method: t(`method.${challenge.method}`) }));
  }, { fields: { code: "#verify-code" } });
});

$("#verify-resend").addEventListener("click", () => act($("#verify-resend"), async () => {
  await call("POST", `/challenges/${challenge.challengeId}/resend`);
  say($("#verify-resend"), t("reset.code.resent"));
}));

// ---- Authenticator app: QR code (an image from the server's SVG) and a first code -------------------------
let setup = null;
$("#app-start").addEventListener("click", () => act($("#app-start"), async () => {
  setup = (await call("POST", "/authenticatorApp")).data;
  $("#app-qr").src = `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(setup.qrSvg)))}`;
  $("#app-qr").alt = t("register.app.qrAlt");
  $("#app-secret").textContent = setup.secret;
  $("#app-form").hidden = false;
  $("#app-code").focus();
}));

$("#app-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("#app-verify"), async () => {
    await call("POST", "/authenticatorApp/verify", { setupId: setup.setupId, code: $("#app-code").value.trim() });
    $("#app-form").hidden = true;
    await load();
    say($("#add-authenticatorApp"), t("register.added", { method: t("method.authenticatorApp") }));
  }, { fields: { code: "#app-code" } });
});

// ---- Security questions: each question can be chosen once ---------------------------------------------------
let catalog = null;

function questionSelects() { return [...document.querySelectorAll("#questions-fields select")]; }

// A question chosen in one list is not offered in the others (the API would refuse it twice).
function offerDistinct() {
  const chosen = questionSelects().map((s) => s.value);
  questionSelects().forEach((select, i) => {
    [...select.options].forEach((option) => {
      option.disabled = chosen.some((value, j) => j !== i && value === option.value);
    });
  });
}

$("#questions-start").addEventListener("click", () => act($("#questions-start"), async () => {
  catalog = (await call("GET", "/securityQuestions/catalog")).data;
  const box = $("#questions-fields");
  box.replaceChildren();
  for (let i = 0; i < catalog.registerCount; i++) {
    const select = el("select", { id: `question-${i}`, "data-field": `answers[${i}].questionId`, onchange: offerDistinct },
      catalog.questions.map((q, j) => el("option", { value: q.id, text: q.text, selected: j === i })));
    box.append(el("label", { for: `question-${i}`, text: t("register.questions.question", { n: i + 1 }) }), select,
      el("label", { for: `answer-${i}`, text: t("register.questions.answer", { n: i + 1 }) }),
      el("input", { id: `answer-${i}`, type: "text", autocomplete: "off", "data-field": `answers[${i}].answer`,
                    minlength: String(catalog.answerMinLength), maxlength: String(catalog.answerMaxLength) }));
  }
  offerDistinct();
  $("#questions-form").hidden = false;
}));

$("#questions-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("#questions-save"), async () => {
    const answers = questionSelects().map((select, i) => ({ questionId: select.value, answer: $(`#answer-${i}`).value }));
    await call("PUT", "/securityQuestions", { answers });
    $("#questions-form").hidden = true;
    await load();
    say($("#add-securityQuestions"), t("register.added", { method: t("method.securityQuestions") }));
  }, { fields: { answers: "#questions-fields select" } });
});

$("#reconfirm").addEventListener("click", () => act($("#reconfirm"), async () => {
  await call("POST", "/reconfirm");
  await load();
  say($("#reconfirm"), t("register.reconfirmed"));
}));

// Passkeys (register-passkeys.js) tell their outcome beside the control used, like every other method.
setupPasskeys({ call, run: act, say: (text, control) => say(control || $("#add-passkey"), text), load });

$("#signin").addEventListener("click", () => signIn());
$("#signout").addEventListener("click", () => signOut());
document.addEventListener("sspr:language", render);

(async () => {
  session = await startSignedInPage();
  if (session) {
    await act($("#status"), load);
    focusStep($("#signed-in"));
  }
})();
