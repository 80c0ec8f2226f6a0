// The change page: user name, current password, a new one twice with live feedback on Entra's rules, a robot check
// per try; AD's verdict (or its own rule), the pending wait while the directory works, and what happens next.
import { $, api, ApiError, focusStep, showError, startPage, t } from "./common.js";
import {
  newPasswordFields, notifiedText, passwordFeedback, passwordRules, proofOfWork, revealing, showServerFailures,
  showSessions, translateProofOfWork, untilSettled,
} from "./new-password.js";

newPasswordFields($("#new-password"), { label: ["change.new", "New password"], differs: true, hint: ["change.adRules",
  "Your organisation's directory may have rules of its own (a longer minimum, no recent passwords): if it refuses, it says which."] });
const errorBox = $("#error");
const widget = $("#pow");

function go(step) {
  for (const name of ["change", "done"]) $(`#step-${name}`).hidden = name !== step;
  focusStep($(`#step-${step}`));
}

function fail(error) {
  const problem = error instanceof ApiError ? error.problem : { title: t("error.generic") };
  showError(errorBox, { problem });
  errorBox.focus?.();
}

// ---- the robot check: one solution per try, a fresh one solved after each ------------------------------------
function freshProofOfWork() {
  widget.reset?.();
  widget.verify?.();  // solved in the background while the person reads the answer
}

// ---- live feedback on the new password ----------------------------------------------------------------------
const localRules = () => passwordRules($("#password").value, $("#password2").value, $("#current").value);
// The server adds what only it knows (common passwords, the organisation's and the user name's words).
const feedback = passwordFeedback(localRules, async (password) => {
  const { data } = await api("POST", "change/password/check", { body: { username: $("#username").value.trim(), password } });
  return data.failures || [];
});

for (const id of ["#password", "#password2", "#current"]) $(id).addEventListener("input", feedback.update);
revealing(["#current", "#password", "#password2"]);

// ---- the change ----------------------------------------------------------------------------------------------
$("#change-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#change");
  button.disabled = true;
  feedback.settle();
  try {
    const username = $("#username").value.trim();
    if (!username || !$("#current").value) throw new ApiError(400, { title: t("change.missing") });
    if (!Object.values(localRules()).every(Boolean)) throw new ApiError(400, { title: t("reset.password.notYet") });
    const altcha = await proofOfWork($("#change-form"), { start: true });
    if (!altcha) throw new ApiError(400, { title: t("reset.start.waitPow") });
    const body = { username, currentPassword: $("#current").value, newPassword: $("#password").value, altcha };
    let response;
    try {
      response = await api("POST", "change", { body });
    } finally {
      freshProofOfWork();  // a solution works once, whatever the answer
    }
    finished(await settled(response));
  } catch (error) {
    if (error instanceof ApiError && Array.isArray(error.problem.failures)) showServerFailures(error.problem.failures);
    fail(error);
  } finally {
    button.disabled = false;
  }
});

// On-premises AD may take a moment: ask about this change until its verdict is in.
function settled(response) {
  const { changeId, changeSecret } = response.data;
  return untilSettled(response, () => api("GET", `change/requests/${changeId}`, { headers: { "X-Change-Secret": changeSecret } }));
}

function finished(data) {
  showError(errorBox, null);
  for (const id of ["#current", "#password", "#password2"]) $(id).value = "";
  $("#done-notified").textContent = notifiedText(data);
  showSessions(data);
  go("done");
}

document.addEventListener("sspr:language", (event) => {
  translateProofOfWork();
  if (event.detail) feedback.update();
});

startPage();
