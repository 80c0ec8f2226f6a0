// What the reset and the change pages share: the robot check's answer, a new password with live feedback on each
// rule, the wait while on-premises AD works, and what the done step says about the other sign-ins.
import { $, el, t } from "./common.js";

// ---- the robot check ------------------------------------------------------------------------------------------
// Its answer; someone who presses Enter before it is done waits for it rather than being refused. `form` holds the
// widget's field; with `start`, a widget that is not already working is asked to start.
export function proofOfWork(form, { timeoutMs = 60_000, start = false } = {}) {
  const solved = () => new FormData(form).get("altcha");
  if (solved()) return Promise.resolve(solved());
  const widget = $("#pow");
  return new Promise((resolve) => {
    const finish = (payload) => {
      widget.removeEventListener("statechange", changed);
      clearTimeout(timer);
      resolve(payload || solved());
    };
    const changed = (event) => {
      if (["verified", "error", "expired"].includes(event.detail?.state)) finish(event.detail.payload);
    };
    const timer = setTimeout(finish, timeoutMs);
    widget.addEventListener("statechange", changed);
    if (start && widget.getState?.() !== "verifying") widget.verify?.();
  });
}

// The widget's own words, in the page's language.
export function translateProofOfWork() {
  $("#pow")?.setAttribute("strings", JSON.stringify({
    label: t("altcha.label"), verified: t("altcha.verified"), verifying: t("altcha.verifying"),
    waitAlert: t("altcha.wait"), error: t("altcha.error"), expired: t("altcha.expired"), footer: "",
  }));
}

// ---- the new password -------------------------------------------------------------------------------------------
// Each text in English until the page's catalog applies (data-i18n).
const text = (tag, key, english, attributes = {}) => el(tag, { "data-i18n": key, text: english, ...attributes });
const RULE_TEXTS = {
  length: "have 8 to 256 characters", classes: "use 3 of: lower case, upper case, digits, symbols",
  ascii: "use only letters a-z, digits, spaces and common symbols", differs: "differ from your current password",
  match: "be typed the same way twice",
};

// The fields of a new password in place of `placeholder`: the password typed twice (the first labelled `label`, a
// [key, English] pair), "show password", and the rules it must meet, each marked live by `passwordFeedback`. A
// change's page adds the rule that it `differs` from the current one, and a `hint` (a pair) below the rules.
export function newPasswordFields(placeholder, { label, differs = false, hint = null }) {
  const rules = ["length", "classes", "ascii", ...(differs ? ["differs"] : []), "match"];
  const password = { type: "password", autocomplete: "new-password", maxlength: "256" };
  placeholder.replaceWith(
    text("label", ...label, { for: "password" }),
    el("input", { id: "password", name: "password", ...password, "aria-describedby": "rules" }),
    text("label", "reset.password.repeat", "Type it again", { for: "password2" }),
    el("input", { id: "password2", name: "password2", ...password }),
    el("label", { class: "inline" }, el("input", { id: "reveal", type: "checkbox" }), " ",
       text("span", "reset.password.show", "Show password")),
    el("div", { id: "rules-box", class: "panel", "aria-live": "polite" },
       text("p", "reset.password.rules", "Your password must:"),
       el("ul", { id: "rules", class: "rules" },
          rules.map((rule) => text("li", `rule.${rule}`, RULE_TEXTS[rule], { "data-rule": rule }))),
       el("ul", { id: "server-failures", class: "rules" }),
       hint && text("p", ...hint, { class: "hint" })),
  );
}

const ALLOWED = /^[A-Za-z0-9@#$%^&*\-_!+=[\]{}|\\:',.?/`~"();<> ]*$/;

// Entra's rules the page checks itself, by the name of their #rules item; a change's `current` password adds one:
// the new one differs from it.
export function passwordRules(password, again, current) {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  const rules = { length: password.length >= 8 && password.length <= 256, classes: classes >= 3,
                  ascii: password.length > 0 && ALLOWED.test(password), match: password.length > 0 && password === again };
  if (current !== undefined) rules.differs = password.length > 0 && password !== current;
  return rules;
}

// Live feedback on #password: `update()` marks each #rules item met or not by `rules()`, then, after a short pause,
// shows what only the server knows (banned words, the user's own names, the organisation's): `check(password)`'s
// failures. `settle()` before a submit: a check still in flight must not wipe the directory's own answer to it.
export function passwordFeedback(rules, check) {
  let timer = null;
  let seq = 0;
  function update() {
    const password = $("#password").value;
    const met = rules();
    document.querySelectorAll("#rules li").forEach((li) => {
      const ok = met[li.dataset.rule];
      li.className = password ? (ok ? "ok" : "bad") : "";
      li.setAttribute("aria-label", `${li.textContent}: ${t(ok ? "rule.met" : "rule.unmet")}`);
    });
    clearTimeout(timer);
    if (!password) { $("#server-failures").replaceChildren(); return; }
    timer = setTimeout(async () => {
      const mine = ++seq;
      try {
        const failures = await check(password);
        if (mine === seq) showServerFailures(failures);
      } catch { /* live feedback is a help, not a gate: the final answer comes from the reset or change itself */ }
    }, 350);
  }
  function settle() {
    clearTimeout(timer);
    seq++;
  }
  return { update, settle };
}

export function showServerFailures(failures) {
  $("#server-failures").replaceChildren(...failures.map((f) => el("li", { class: "bad", text: f.message })));
}

// "Show password" shows each of the `fields` (selectors) as typed, or hides them again.
export function revealing(fields) {
  $("#reveal").addEventListener("change", (event) => {
    for (const id of fields) $(id).type = event.target.checked ? "text" : "password";
  });
}

// ---- the answer -------------------------------------------------------------------------------------------------
// On-premises AD may take a moment: 202 means the change is under way; `askAgain()` until its verdict is in.
export async function untilSettled(response, askAgain) {
  let { status, data } = response;
  $("#pending").hidden = status !== 202;
  try {
    while (status === 202) {
      await new Promise((resolve) => setTimeout(resolve, (data.retryAfterSeconds || 2) * 1000));
      ({ status, data } = await askAgain());
    }
  } finally {
    $("#pending").hidden = true;
  }
  return data;
}

// Who was told of the new password (empty when nobody was).
export function notifiedText(data) {
  return data.notified?.length ? t("reset.done.mail", { to: data.notified.join(", ") }) : "";
}

// Graph may end the other sign-ins a few minutes later: say so.
export function showSessions(data) {
  const sessions = $("#done-sessions");
  sessions.dataset.i18n = data.sessionsRevoked === false ? "reset.done.sessionsPending" : "reset.done.sessions";
  sessions.textContent = t(sessions.dataset.i18n);
}
