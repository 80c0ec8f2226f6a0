// The signed-in user's page: see my methods and status, add and verify each method, reconfirm, remove.
import { $, api, ApiError, completeSignIn, el, focusStep, showError, signIn, signOut, startPage, t } from "./common.js";

const errorBox = $("#error");
const notice = $("#notice");
let session = null;
let view = null;
let challenge = null;

function say(text) { notice.textContent = text; notice.hidden = !text; }

async function run(button, work) {
  if (button) button.disabled = true;
  try { showError(errorBox, null); await work(); } catch (error) { showError(errorBox, error); if (error.status === 401) signOut(); }
  finally { if (button) button.disabled = false; }
}

const call = (method, path, body) => api(method, `me/security-info${path}`, { body, token: session.token });

async function load() {
  view = (await call("GET", "")).data;
  render();
}

function render() {
  if (!view) return;
  const status = view.status;
  $("#status").replaceChildren(
    el("p", { id: "status-registered", text: status.registered ? t("register.registered") : t("register.notRegistered", { count: status.requiredCount }) }),
    el("p", { text: t("register.usable", { count: status.usableMethods.length, required: status.requiredCount }) }),
    status.reconfirmDue ? el("p", { text: t("register.reconfirmDue") }) : null,
  );
  $("#methods").replaceChildren(...view.methods.map((m) => el("tr", { "data-method": m.method },
    el("td", { text: t(`method.${m.method}`) }), el("td", { text: m.contact || "" }),
    el("td", { text: new Date(m.registeredAt).toLocaleDateString(document.documentElement.lang) }),
    el("td", {}, el("button", { type: "button", class: "secondary", "data-remove": m.method, text: t("register.remove"),
      "aria-label": `${t("register.remove")} ${t(`method.${m.method}`)}`, onclick: (e) => remove(e.target, m.method) })))));
  for (const method of ["email", "mobilePhone", "officePhone", "authenticatorApp", "securityQuestions"]) {
    $(`#add-${method}`).hidden = !view.allowedMethods.includes(method);
  }
  $("#unavailable").replaceChildren(...(view.unavailableMethods || []).map((u) => el("p", { text: `${t(`method.${u.method}`)}: ${u.reason}` })));
}

async function remove(button, method) {
  await run(button, async () => {
    let confirmed = false;
    try { await call("DELETE", `/${method}`); }
    catch (error) {
      // Removing a method that leaves too few asks first; the user confirms in plain words.
      if (!(error instanceof ApiError) || error.status !== 409 || !window.confirm(error.problem.title)) throw error;
      confirmed = true;
    }
    if (confirmed) await call("DELETE", `/${method}?confirm=true`);
    say(t("register.removed", { method: t(`method.${method}`) }));
    await load();
  });
}

// ---- Email and phones: a code to the contact proves it ---------------------------------------------------
for (const [method, field] of [["email", "address"], ["mobilePhone", "number"], ["officePhone", "number"]]) {
  $(`#${method}-form`).addEventListener("submit", (event) => {
    event.preventDefault();
    run($(`#${method}-send`), async () => {
      const value = $(`#${method}`).value.trim();
      if (!value) throw new ApiError(400, { title: t("reset.method.missing") });
      const body = { [field]: value };
      if (field === "number" && document.documentElement.lang === "sv") body.defaultRegion = "SE";
      challenge = (await call("POST", `/${method}`, body)).data;
      $("#verify-sent").textContent = t("register.codeSent", { contact: challenge.contact });
      $("#verify-code").value = "";
      $("#verify").hidden = false;
      $("#verify-code").focus();
    });
  });
}

$("#verify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#verify-submit"), async () => {
    await call("POST", `/challenges/${challenge.challengeId}/verify`, { code: $("#verify-code").value.trim() });
    $("#verify").hidden = true;
    say(t("register.added", { method: t(`method.${challenge.method}`) }));
    await load();
    focusStep($("#signed-in"));
  });
});

$("#verify-resend").addEventListener("click", () => run($("#verify-resend"), async () => {
  await call("POST", `/challenges/${challenge.challengeId}/resend`);
  say(t("reset.code.resent"));
}));

// ---- Authenticator app: QR code (an image from the server's SVG) and a first code -------------------------
let setup = null;
$("#app-start").addEventListener("click", () => run($("#app-start"), async () => {
  setup = (await call("POST", "/authenticatorApp")).data;
  $("#app-qr").src = `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(setup.qrSvg)))}`;
  $("#app-qr").alt = t("register.app.qrAlt");
  $("#app-secret").textContent = setup.secret;
  $("#app-form").hidden = false;
  $("#app-code").focus();
}));

$("#app-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#app-verify"), async () => {
    await call("POST", "/authenticatorApp/verify", { setupId: setup.setupId, code: $("#app-code").value.trim() });
    $("#app-form").hidden = true;
    say(t("register.added", { method: t("method.authenticatorApp") }));
    await load();
  });
});

// ---- Security questions -------------------------------------------------------------------------------------
$("#questions-start").addEventListener("click", () => run($("#questions-start"), async () => {
  const catalog = (await call("GET", "/securityQuestions/catalog")).data;
  const box = $("#questions-fields");
  box.replaceChildren();
  for (let i = 0; i < catalog.registerCount; i++) {
    const select = el("select", { id: `question-${i}` }, catalog.questions.map((q, j) =>
      el("option", { value: q.id, text: q.text, selected: j === i })));
    box.append(el("label", { for: `question-${i}`, text: t("register.questions.question", { n: i + 1 }) }), select,
      el("label", { for: `answer-${i}`, text: t("register.questions.answer", { n: i + 1 }) }),
      el("input", { id: `answer-${i}`, type: "text", autocomplete: "off", minlength: String(catalog.answerMinLength),
                    maxlength: String(catalog.answerMaxLength) }));
  }
  $("#questions-form").hidden = false;
}));

$("#questions-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#questions-save"), async () => {
    const answers = [...document.querySelectorAll("#questions-fields select")].map((select, i) =>
      ({ questionId: select.value, answer: $(`#answer-${i}`).value }));
    await call("PUT", "/securityQuestions", { answers });
    $("#questions-form").hidden = true;
    say(t("register.added", { method: t("method.securityQuestions") }));
    await load();
  });
});

$("#reconfirm").addEventListener("click", () => run($("#reconfirm"), async () => {
  await call("POST", "/reconfirm");
  say(t("register.reconfirmed"));
  await load();
}));

$("#signin").addEventListener("click", () => signIn());
$("#signout").addEventListener("click", () => signOut());
document.addEventListener("sspr:language", render);

(async () => {
  await startPage();
  try { session = await completeSignIn(); } catch (error) { showError(errorBox, error); }
  $("#signed-out").hidden = Boolean(session);
  $("#signed-in").hidden = !session;
  if (session) { $("#who").textContent = session.name; await run(null, load); }
})();
