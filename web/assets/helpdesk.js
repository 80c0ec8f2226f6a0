// The helpdesk agent's page: find the caller, see what a decision needs, verify the caller through a method the user
// registered (never a number or address the caller gives), then help: each action audited, none shows a password.
import { $, act, api, ApiError, completeSignIn, el, focusStep, renderProblem, say, signIn, signOut, startPage, t }
  from "./common.js";

let session = null;
let cursor = null;
let current = null;        // the caller's view
let verification = null;   // the verification's view
let search = "";

const call = (method, path, body) => api(method, `helpdesk/${path}`, { body, token: session.token });

// ---- Feedback beside the control a person used (common.js: act, say, renderProblem) -----------------------------
// A refusal's reason (an action this caller cannot have) or pause (until when) is said in the page's own words.
function inWords(error) {
  const problem = error?.problem;
  if (problem && !problem.detail) {
    const until = problem.until ? t("helpdesk.until", { until: new Date(problem.until).toLocaleString(document.documentElement.lang) }) : "";
    const words = [problem.reason ? t(`helpdesk.reason.${problem.reason}`) : "", until].filter(Boolean).join(" ");
    if (words) problem.detail = words;
  }
  return error;
}

const run = (control, work) => act(control, async () => {
  try { return await work(); } catch (error) { throw inWords(error); }
}, { fields: { code: "#code", search: "#search", userId: "#search" } });

const when = (iso) => (iso ? new Date(iso).toLocaleString(document.documentElement.lang) : t("helpdesk.never"));
const yes = (value) => t(value ? "helpdesk.yes" : "helpdesk.no");

// ---- 1. Find the caller ------------------------------------------------------------------------------------------
async function find(more) {
  const params = new URLSearchParams({ search });
  if (more && cursor) params.set("cursor", cursor);
  const { data } = await call("GET", `users?${params}`);
  if (!more) $("#results").replaceChildren();
  for (const user of data.value) {
    const label = `${user.displayName} (${user.userPrincipalName})${user.accountEnabled ? "" : ` - ${t("helpdesk.disabled")}`}`;
    $("#results").append(el("li", {}, el("button", { type: "button", class: "secondary", "data-user": user.id, text: label,
      onclick: (event) => run(event.currentTarget, () => openCaller(user.id)) })));
  }
  cursor = data.cursor;
  $("#more").hidden = !cursor;
  if (!more && !data.value.length) say($("#find-go"), t("helpdesk.find.none"));
}

$("#find-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search = $("#search").value.trim();
  run($("#find-go"), async () => {
    if (search.length < 2) throw new ApiError(400, { title: t("helpdesk.find.short") });
    await find(false);
  });
});
$("#more").addEventListener("click", () => run($("#more"), () => find(true)));

// ---- 2. What a decision needs ------------------------------------------------------------------------------------
async function openCaller(userId) {
  current = (await call("GET", `users/${userId}`)).data;
  verification = null;
  renderCaller();
  $("#start").hidden = false;
  $("#verify").hidden = true;
  $("#actions").hidden = true;
  $("#caller").hidden = false;
  focusStep($("#caller"));
}

function renderCaller() {
  if (!current) return;
  $("#caller-name").textContent = current.displayName;
  $("#caller-upn").textContent = current.userPrincipalName;
  const facts = [["ssprEnabled", yes(current.ssprEnabled)], ["accountEnabled", yes(current.accountEnabled)],
    ["synced", yes(current.synced)], ["administrator", yes(current.administrator)],
    ["protectedGroup", yes(current.protectedGroup)],
    ["blockedUntil", current.blockedUntil ? when(current.blockedUntil) : t("helpdesk.notBlocked")],
    ["lastPasswordChange", when(current.lastPasswordChange)]];
  $("#caller-facts tbody").replaceChildren(...facts.map(([key, value]) =>
    el("tr", { "data-fact": key }, el("th", { scope: "row", text: t(`helpdesk.fact.${key}`) }), el("td", { text: value }))));
  $("#caller-methods").replaceChildren(...(current.methods.length ? current.methods.map((m) =>
    el("li", { text: `${t(`method.${m.method}`)}${m.contact ? `: ${m.contact}` : ""}` })) : [el("li", { text: t("helpdesk.caller.noMethods") })]));
  $("#caller-recent").replaceChildren(...(current.recentEvents.length ? current.recentEvents.map((e) =>
    el("li", { text: `${when(e.time)}: ${t(`activity.${e.activity}`)} (${t(`outcome.${e.outcome}`)})` }))
    : [el("li", { text: t("helpdesk.caller.noEvents") })]));
  $("#caller-four-eyes").hidden = !current.fourEyes;
  $("#caller-refused").hidden = !current.refused;
}

$("#start").addEventListener("click", () => run($("#start"), async () => {
  verification = (await call("POST", "verifications", { userId: current.id })).data;
  renderVerification();
  $("#verify").hidden = false;
  focusStep($("#verify"));
}));

// ---- 3. Verify through what the user registered -----------------------------------------------------------------
function renderVerification() {
  const v = verification;
  $("#verify-state").textContent = t(`helpdesk.state.${v.state}`, { method: v.verifiedWith ? t(`method.${v.verifiedWith}`) : "" });
  const buttons = v.codeMethods.map((m) => el("button", { type: "button", class: "secondary", "data-send": m.method,
    text: t("helpdesk.verify.sendTo", { method: t(`method.${m.method}`), contact: m.contact }),
    onclick: (event) => run(event.currentTarget, () => sendCode(event.currentTarget, m.method)) }));
  $("#send-buttons").replaceChildren(...buttons);
  $("#no-methods").hidden = Boolean(v.codeMethods.length || v.appCode || v.passkey);
  $("#ask-passkey").hidden = !v.passkey;
  $("#passkey-waiting").hidden = !v.passkeyAsked;
  $("#passkey-check").hidden = !v.passkeyAsked;
  const options = v.codeMethods.map((m) => el("option", { value: m.method, text: `${t(`method.${m.method}`)}: ${m.contact}` }));
  if (v.appCode) options.push(el("option", { value: "authenticatorApp", text: t("method.authenticatorApp") }));
  const chosen = $("#code-method").value;
  $("#code-method").replaceChildren(...options);
  if (chosen) $("#code-method").value = chosen;
  const open = v.state === "started";
  $("#start").hidden = v.state !== "locked";  // a new verification only after a locked one
  $("#send-box").hidden = !open;
  $("#code-form").hidden = !open;
  renderActions();
}

$("#ask-passkey").addEventListener("click", () => run($("#ask-passkey"), async () => {
  verification = (await call("POST", `verifications/${verification.verificationId}/passkey`, {})).data;
  renderVerification();
}));

$("#passkey-check").addEventListener("click", () => run($("#passkey-check"), async () => {
  verification = (await call("GET", `verifications/${verification.verificationId}`)).data;
  renderVerification();
  if (verification.state === "verified") focusStep($("#actions"));
  else say($("#passkey-check"), t("helpdesk.verify.passkeyNotYet"));
}));

async function sendCode(button, method) {
  const { data } = await call("POST", `verifications/${verification.verificationId}/codes`, { method });
  $("#code-method").value = method;
  say(button, t("helpdesk.verify.sent", { contact: data.contact, minutes: Math.round(data.expiresInSeconds / 60) }));
  $("#code").focus();
}

$("#code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#check"), async () => {
    const code = $("#code").value.trim();
    if (!code) throw new ApiError(400, { title: t("helpdesk.verify.empty") });
    try {
      verification = (await call("POST", `verifications/${verification.verificationId}/verify`,
        { method: $("#code-method").value, code })).data;
    } catch (error) {
      if (error?.problem?.type === "urn:sspr:problem:code-locked") {
        verification = { ...verification, state: "locked" };
        renderVerification();
      }
      throw error;
    }
    $("#code").value = "";
    renderVerification();
    focusStep($("#actions"));
  });
});

// ---- 4. Help: each action on its own ------------------------------------------------------------------------------
function renderActions() {
  const v = verification;
  $("#actions").hidden = !v || v.state !== "verified";
  if (!v) return;
  $("#action-list").replaceChildren(...v.actions.map((offer) => el("div", { class: "action" },
    el("button", { type: "button", "data-action": offer.action, disabled: !offer.available,
      text: t(`helpdesk.action.${offer.action}`),
      onclick: (event) => run(event.currentTarget, () => runAction(event.currentTarget, offer.action)) }),
    offer.available ? null : el("span", { class: "hint", text: ` ${t(`helpdesk.reason.${offer.reason}`)}` }))));
}

async function runAction(button, action) {
  const { data } = await call("POST", `verifications/${verification.verificationId}/actions`, { action });
  if (data.pendingApproval) say(button, t("helpdesk.action.waiting"));
  else if (data.pending) say(button, t("helpdesk.action.pending"));
  else say(button, t(`helpdesk.done.${action}`, { to: data.sentTo || "" }));
  verification = (await call("GET", `verifications/${verification.verificationId}`)).data;
  renderVerification();  // the message stays: it is the section's, not the button's
}

// ---- Four eyes: other agents' requests ------------------------------------------------------------------------------
async function loadApprovals() {
  const { data } = await call("GET", "approvals");
  $("#approval-list").replaceChildren(...(data.value.length ? data.value.map((r) => el("li", { "data-request": r.requestId },
    el("span", { text: t("helpdesk.approvals.item", { agent: r.requestedBy, action: t(`helpdesk.asks.${r.action}`),
      user: r.userPrincipalName, time: when(r.requestedAt) }) }), " ",
    el("button", { type: "button", "data-decide": "approve", text: t("helpdesk.approvals.approve"),
      onclick: (event) => run(event.currentTarget, () => decide(event.currentTarget, r.requestId, "approve")) }),
    el("button", { type: "button", class: "secondary", "data-decide": "deny", text: t("helpdesk.approvals.deny"),
      onclick: (event) => run(event.currentTarget, () => decide(event.currentTarget, r.requestId, "deny")) })))
    : [el("li", { text: t("helpdesk.approvals.none") })]));
}

async function decide(button, requestId, decision) {
  const { data } = await call("POST", `approvals/${requestId}`, { decision });
  await loadApprovals();
  say($("#approvals-refresh"), data.approved ? t("helpdesk.approvals.approved") : t("helpdesk.approvals.denied"));
}

$("#approvals-refresh").addEventListener("click", () => run($("#approvals-refresh"), loadApprovals));

// ---- Sign-in and language ------------------------------------------------------------------------------------------
document.addEventListener("sspr:language", () => {
  renderCaller();
  if (verification) renderVerification();
  if (session) loadApprovals().catch(() => {});
});

async function main() {
  await startPage();
  try {
    session = await completeSignIn();
  } catch (error) {
    renderProblem($("#signin"), error);
  }
  $("#signed-out").hidden = Boolean(session);
  $("#signed-in").hidden = !session;
  $("#signin").addEventListener("click", () => signIn());
  $("#signout").addEventListener("click", () => signOut());
  if (!session) return;
  $("#who").textContent = session.name;
  try {
    await loadApprovals();
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      $("#signed-in").hidden = true;
      $("#error").replaceChildren(el("p", { text: t("helpdesk.noRole") }));
      $("#error").hidden = false;
      $("#error").focus();
      return;
    }
    renderProblem($("#approvals-refresh"), inWords(error));
  }
  $("#search").focus();
}

main();
