// The admin dashboard: policy, enablement with live progress, tenant eligibility, compliance charts and users, audit.
import { $, api, ApiError, completeSignIn, el, showError, signIn, signOut, startPage, t } from "./common.js";
import { barChart, lineChart } from "./charts.js";

const errorBox = $("#error");
const notice = $("#notice");
let session = null;
let policyETag = null;
const ACTIVITIES = ["Reset password (self-service)", "Self-service password reset flow activity progress",
  "Blocked from self-service password reset", "User registered security info",
  "User registered all required security info", "User deleted security info", "Reset password (by admin)",
  "Update self-service password reset policy", "Request self-service password reset enablement",
  "Complete self-service password reset enablement", "Start compliance run"];

const call = (method, path, options = {}) => api(method, `manage/${path}`, { ...options, token: session.token });
function say(text) { notice.textContent = text; notice.hidden = !text; }

async function run(button, work) {
  if (button) button.disabled = true;
  try { showError(errorBox, null); await work(); }
  catch (error) { showError(errorBox, error); if (error.status === 401) signOut(); }
  finally { if (button) button.disabled = false; }
}

// ---- Tabs ------------------------------------------------------------------------------------------------------
const loaders = { policy: loadPolicy, enablement: loadEnablement, eligibility: loadEligibility, compliance: loadCompliance, audit: () => {} };
function openTab(name) {
  document.querySelectorAll("nav.tabs button").forEach((b) => b.setAttribute("aria-current", b.dataset.tab === name ? "page" : "false"));
  document.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.id !== `tab-${name}`; });
  history.replaceState(null, "", `#${name}`);
  run(null, loaders[name]);
}
document.querySelectorAll("nav.tabs button").forEach((b) => b.addEventListener("click", () => openTab(b.dataset.tab)));

// ---- Policy: one field per setting, each with its own validation message ------------------------------------
const POLICY_FIELDS = [
  ["scope", "select", ["none", "selected", "all"]], ["groupId", "text"], ["includeGuests", "checkbox"],
  ...["email", "mobilePhone", "officePhone", "authenticatorApp", "appNotification", "securityQuestions"]
    .map((m) => [`methodsAllowed.${m}`, "checkbox"]),
  ["methodsRequired", "select", [1, 2]], ["securityQuestions.registerCount", "number"],
  ["securityQuestions.resetCount", "number"], ["securityQuestions.customQuestions", "lines"],
  ["requireRegistrationAtSignIn", "checkbox"], ["daysUserMaySkip", "number"], ["reconfirmDays", "number"],
  ["notifyUsersOnReset", "checkbox"], ["notifyAdminsOnAdminReset", "checkbox"], ["helpdesk.url", "text"],
  ["helpdesk.email", "text"], ["codes.length", "number"], ["codes.emailTtlMinutes", "number"],
  ["codes.smsTtlMinutes", "number"], ["codes.voiceTtlMinutes", "number"],
];
const fieldId = (path) => `policy-${path.replace(/\./g, "-")}`;
const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  keys.slice(0, -1).forEach((k) => { o = o[k] = o[k] || {}; });
  o[keys.at(-1)] = value;
}

function renderPolicyFields(policy) {
  const box = $("#policy-fields");
  box.replaceChildren();
  for (const [path, kind, options] of POLICY_FIELDS) {
    const id = fieldId(path);
    const value = getPath(policy, path);
    const message = el("p", { id: `${id}-error`, class: "alert", hidden: true, "data-field-error": path });
    let input;
    if (kind === "checkbox") {
      input = el("input", { id, type: "checkbox", checked: Boolean(value), "aria-describedby": `${id}-error` });
      box.append(el("label", { class: "inline", for: id }, input, el("span", { text: t(`admin.field.${path}`) })), message);
      continue;
    }
    if (kind === "select") input = el("select", { id }, options.map((o) => el("option", { value: String(o), text: t(`admin.option.${path}.${o}`), selected: String(o) === String(value) })));
    else if (kind === "lines") { input = el("textarea", { id, rows: "3" }); input.value = (value || []).join("\n"); }
    else input = el("input", { id, type: kind === "number" ? "number" : "text", value: value ?? "" });
    input.setAttribute("aria-describedby", `${id}-error`);
    box.append(el("label", { for: id, text: t(`admin.field.${path}`) }), input, message);
  }
}

function readPolicyFields() {
  const policy = {};
  for (const [path, kind, options] of POLICY_FIELDS) {
    const input = $(`#${fieldId(path)}`);
    let value;
    if (kind === "checkbox") value = input.checked;
    else if (kind === "number") value = input.value === "" ? null : Number(input.value);
    else if (kind === "lines") value = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (kind === "select") value = typeof options[0] === "number" ? Number(input.value) : input.value;
    else value = input.value.trim() || null;
    setPath(policy, path, value);
  }
  return policy;
}

function showFieldErrors(errors) {
  document.querySelectorAll("[data-field-error]").forEach((p) => { p.hidden = true; p.textContent = ""; });
  let first = null;
  for (const { field, message } of errors) {
    const box = document.querySelector(`[data-field-error="${CSS.escape(field)}"]`);
    if (!box) continue;
    box.textContent = message;
    box.hidden = false;
    $(`#${fieldId(field)}`).setAttribute("aria-invalid", "true");
    first = first || $(`#${fieldId(field)}`);
  }
  first?.focus();
}

async function loadPolicy() {
  const { data, headers } = await call("GET", "policy");
  policyETag = headers.get("ETag");
  renderPolicyFields(data);
}

$("#policy-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#policy-save"), async () => {
    try {
      const { data, headers } = await call("PUT", "policy", { body: readPolicyFields(), headers: { "If-Match": policyETag } });
      policyETag = headers.get("ETag");
      renderPolicyFields(data);
      say(t("admin.policy.saved"));
    } catch (error) {
      if (error instanceof ApiError && Array.isArray(error.problem.errors)) showFieldErrors(error.problem.errors);
      throw error;
    }
  });
});

// ---- Enablement with a live progress bar --------------------------------------------------------------------
function showRun(runDoc) {
  $("#enable-progress-box").hidden = false;
  const percent = runDoc.state === "completed" ? 100 : Math.floor(runDoc.percent ?? 0);
  $("#enable-progress").value = percent;
  $("#enable-progress").setAttribute("aria-valuetext", `${percent}%`);
  $("#enable-status").textContent = t(`admin.enable.${runDoc.state}`, {
    percent, processed: runDoc.usersProcessed, total: runDoc.usersTotal ?? "?", inScope: runDoc.inScope });
}

async function follow(id) {
  for (;;) {
    const { data } = await call("GET", `enablement/${id}`);
    showRun(data);
    if (data.state === "completed" || data.state === "failed") return data;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function loadEnablement() {
  const { data } = await call("GET", "enablement");
  const latest = data.value[0];
  if (latest) {
    $("#enable-scope").value = latest.scope;
    $("#enable-group").value = latest.groupId || "";
    showRun(latest);
    if (latest.state === "queued" || latest.state === "running") await follow(latest.id);
  }
}

$("#enable-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#enable-start"), async () => {
    const scope = $("#enable-scope").value;
    const body = { scope, groupId: scope === "selected" ? $("#enable-group").value.trim() : null };
    const { data } = await call("POST", "enablement", { body });
    showRun({ state: data.state, percent: 0, usersProcessed: 0, usersTotal: null, inScope: 0 });
    await follow(data.id);
  });
});

// ---- Tenant eligibility ---------------------------------------------------------------------------------------
async function loadEligibility() {
  const { data } = await call("GET", "tenant/eligibility");
  $("#eligibility-severity").textContent = t(`admin.severity.${data.severity}`);
  $("#eligibility-findings").replaceChildren(...data.findings.map((f) =>
    el("li", { "data-code": f.code }, el("strong", { text: `${t(`admin.severity.${f.severity}`)}: ` }), f.message)));
}

// ---- Compliance: summary, charts, per-user table with filters and CSV --------------------------------------
let currentRun = null;
let usersContinuation = null;

async function loadCompliance() {
  const { data } = await call("GET", "compliance/runs");
  const runs = data.value.filter((r) => r.state === "completed").reverse();  // oldest first for the chart
  const latest = data.value[0];
  $("#compliance-state").textContent = latest ? t(`admin.compliance.state.${latest.state}`) : t("admin.compliance.none");
  const shown = runs.at(-1);
  if (!shown) return;
  currentRun = (await call("GET", `compliance/runs/${shown.id}`)).data;
  const counts = { users: currentRun.users, capable: currentRun.capable, registered: currentRun.users - currentRun.notRegistered,
    enabled: currentRun.users - currentRun.notEnabled, notRegistered: currentRun.notRegistered, reconfirmOverdue: currentRun.reconfirmOverdue };
  document.querySelectorAll("[data-count]").forEach((td) => { td.textContent = String(counts[td.dataset.count]); });
  const dates = runs.map((r) => new Date(r.completedAt || r.createdAt).toLocaleDateString(document.documentElement.lang));
  lineChart($("#chart-history"), { title: t("admin.chart.overTime"), labels: dates, series: [
    { name: t("admin.compliance.capable"), values: runs.map((r) => r.capable) },
    { name: t("admin.compliance.registered"), values: runs.map((r) => r.users - r.notRegistered) },
    { name: t("admin.compliance.enabled"), values: runs.map((r) => r.users - r.notEnabled) }] });
  barChart($("#chart-methods"), { title: t("admin.chart.methods"), empty: t("admin.chart.empty"), items: Object.entries(currentRun.byMethod)
    .map(([key, value]) => ({ key, label: t(`method.${key}`), value })) });
  barChart($("#chart-reasons"), { title: t("admin.chart.reasons"), empty: t("admin.chart.empty"), items: currentRun.topReasons
    .map((r) => ({ key: r.reason, label: t(`reason.${r.reason}`), value: r.users })) });
  await loadUsers(false);
}

function userQuery(extra = {}) {
  const query = new URLSearchParams();
  for (const name of ["status", "method", "reason"]) { const v = $(`#filter-${name}`).value; if (v) query.set(name, v); }
  for (const [k, v] of Object.entries(extra)) query.set(k, v);
  return query;
}

async function loadUsers(more) {
  if (!currentRun) return;
  const query = userQuery({ pageSize: "50" });
  if (more && usersContinuation) query.set("continuation", usersContinuation);
  const { data } = await call("GET", `compliance/runs/${currentRun.id}/users?${query}`);
  const rows = data.value.map((u) => el("tr", { "data-user": u.userId }, el("td", { text: u.userId }),
    el("td", { text: t(`status.${u.status}`) }), el("td", { text: u.methods.map((m) => t(`method.${m}`)).join(", ") }),
    el("td", { text: u.reasons.map((r) => t(`reason.${r}`)).join(", ") })));
  if (more) $("#users").append(...rows); else $("#users").replaceChildren(...rows);
  usersContinuation = data.continuation;
  $("#users-more").hidden = !usersContinuation;
}

// A CSV needs the token, so it is fetched and handed to the browser as a file.
async function download(path, filename) {
  const response = await fetch(`/api/manage/${path}`, { headers: { Authorization: `Bearer ${session.token}`, Accept: "text/csv" } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({ title: t("error.generic") })));
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

$("#users-filter").addEventListener("submit", (event) => { event.preventDefault(); run($("#users-apply"), () => loadUsers(false)); });
$("#users-more").addEventListener("click", () => run($("#users-more"), () => loadUsers(true)));
$("#users-csv").addEventListener("click", () => run($("#users-csv"), () =>
  download(`compliance/runs/${currentRun.id}/users?${userQuery({ format: "csv" })}`, "compliance-users.csv")));
$("#compliance-run").addEventListener("click", () => run($("#compliance-run"), async () => {
  const { data } = await call("POST", "compliance/runs", { body: { sendReminders: false } });
  for (;;) {
    const run = (await call("GET", `compliance/runs/${data.id}`)).data;
    $("#compliance-state").textContent = t(`admin.compliance.state.${run.state}`);
    if (run.state === "completed" || run.state === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await loadCompliance();
}));

// ---- Audit search ------------------------------------------------------------------------------------------
function auditQuery(extra = {}) {
  const query = new URLSearchParams(extra);
  const from = $("#audit-from").value, to = $("#audit-to").value;
  if (from) query.set("from", new Date(from).toISOString());
  if (to) query.set("to", new Date(to).toISOString());
  if ($("#audit-user").value.trim()) query.set("user", $("#audit-user").value.trim());
  if ($("#audit-activity").value) query.set("activity", $("#audit-activity").value);
  return query;
}
$("#audit-activity").append(...ACTIVITIES.map((a) => el("option", { value: a, text: a })));
$("#audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run($("#audit-search"), async () => {
    const { data } = await call("GET", `audit?${auditQuery({ pageSize: "100" })}`);
    $("#audit-rows").replaceChildren(...data.value.map((e) => el("tr", {},
      el("td", { text: new Date(e.time).toLocaleString(document.documentElement.lang) }), el("td", { text: e.activity }),
      el("td", { text: e.outcome }), el("td", { text: e.actorDisplay || e.actorId }), el("td", { text: e.targetUserId || "" }))));
    if (!data.value.length) say(t("admin.audit.none")); else say("");
  });
});
$("#audit-csv").addEventListener("click", () => run($("#audit-csv"), () => download(`audit?${auditQuery({ format: "csv" })}`, "audit.csv")));

$("#signin").addEventListener("click", () => signIn());
$("#signout").addEventListener("click", () => signOut());

(async () => {
  await startPage();
  try { session = await completeSignIn(); } catch (error) { showError(errorBox, error); }
  $("#signed-out").hidden = Boolean(session);
  $("#signed-in").hidden = !session;
  if (session) {
    $("#who").textContent = session.name;
    const wanted = location.hash.slice(1);
    openTab(loaders[wanted] ? wanted : "policy");
  }
})();
