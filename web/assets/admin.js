// The admin dashboard: the policy, who may reset (with a group picker, live progress and the eligibility of the
// scope in view), compliance charts and users, and the audit. Each tab is a section with a loader; every action
// goes through `act` (common.js), so earlier messages go and a failure is told beside the control that was used.
import { $, act, api, el, renderProblem, say, signIn, signOut, startSignedInPage, t, tn, clearFeedback,
  sessionEnded, ApiError } from "./common.js";
import { barChart, lineChart } from "./charts.js";

let session = null;
const call = (method, path, options = {}) => api(method, `manage/${path}`, { ...options, token: session.token });
const lang = () => document.documentElement.lang;

// ---- Tabs: one section each, loaded when opened ------------------------------------------------------------------
const loaders = { policy: loadPolicy, enablement: loadEnablement, compliance: loadCompliance, expiry: loadExpiry,
  audit: loadAudit, onprem: loadAgents };
const ALIASES = { eligibility: "enablement" };
let openedTab = null;

function openTab(name) {
  openedTab = name;
  clearFeedback();
  document.querySelectorAll("nav.tabs button").forEach((b) => b.setAttribute("aria-current", b.dataset.tab === name ? "page" : "false"));
  document.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.id !== `tab-${name}`; });
  history.replaceState(null, "", `${location.search}#${name}`);
  const tab = $(`#tab-${name}`);
  return act(tab.querySelector("h2"), loaders[name]);
}
document.querySelectorAll("nav.tabs button").forEach((b) => b.addEventListener("click", () => openTab(b.dataset.tab)));

// ---- Policy: one field per setting, each with its own validation message ------------------------------------
// Who may reset (scope, group, guests) is set in one place only: the "Who may reset" tab.
const POLICY_FIELDS = [
  ...["email", "mobilePhone", "officePhone", "authenticatorApp", "appNotification", "securityQuestions"]
    .map((m) => [`methodsAllowed.${m}`, "checkbox"]),
  ["methodsRequired", "select", [1, 2]], ["securityQuestions.registerCount", "number"],
  ["securityQuestions.resetCount", "number"], ["securityQuestions.customQuestions", "lines"],
  ["requireRegistrationAtSignIn", "checkbox"], ["daysUserMaySkip", "number"], ["reconfirmDays", "number"],
  ["notifyUsersOnReset", "checkbox"], ["notifyAdminsOnAdminReset", "checkbox"], ["helpdesk.url", "text"],
  ["helpdesk.email", "text"], ["helpdesk.privilegedCallers", "select", ["four-eyes", "refuse"]],
  ["helpdesk.protectedGroupId", "group"], ["codes.length", "number"], ["codes.emailTtlMinutes", "number"],
  ["codes.smsTtlMinutes", "number"], ["codes.voiceTtlMinutes", "number"],
  ["onPremises.writeback", "checkbox"], ["onPremises.unlockWithoutReset", "checkbox"],
  ["expiryReminders.enabled", "checkbox"], ["expiryReminders.stages", "numbers"], ["expiryReminders.sms", "checkbox"],
  ["expiryReminders.cloudPolicyForSyncedUsers", "checkbox"],
  ["methodsAllowed.passkey", "checkbox"], ["passkeys.countsAsTwoMethods", "checkbox"],
  ["passkeys.countsAsTwoForAdministrators", "checkbox"], ["temporaryAccessPass.insteadOfPassword", "checkbox"],
  ["temporaryAccessPass.afterPassword", "checkbox"], ["temporaryAccessPass.lifetimeMinutes", "number"],
  ["temporaryAccessPass.oneTimeUse", "checkbox"], ["entraMethods.count", "checkbox"],
];
const fieldId = (path) => `policy-${path.replace(/\./g, "-")}`;
const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  keys.slice(0, -1).forEach((k) => { o = o[k] = { ...(o[k] || {}) }; });
  o[keys.at(-1)] = value;
}

let policy = null;       // the document as last read or saved
let policyETag = null;

function renderPolicyFields(values) {
  const box = $("#policy-fields");
  box.replaceChildren();
  for (const [path, kind, options] of POLICY_FIELDS) {
    const id = fieldId(path);
    const value = getPath(values, path);
    const message = el("p", { id: `${id}-error`, class: "field-error", hidden: true, "data-field-error": path });
    let input;
    if (kind === "checkbox") {
      input = el("input", { id, type: "checkbox", checked: Boolean(value), "data-field": path });
      box.append(el("label", { class: "inline", for: id }, input, el("span", { text: t(`admin.field.${path}`) })), message);
      continue;
    }
    if (kind === "group") { box.append(groupField(id, path, value), message); continue; }
    if (kind === "select") input = el("select", { id, "data-field": path }, options.map((o) => el("option", { value: String(o), text: t(`admin.option.${path}.${o}`), selected: String(o) === String(value) })));
    else if (kind === "lines") { input = el("textarea", { id, rows: "3", "data-field": path }); input.value = (value || []).join("\n"); }
    else if (kind === "numbers") input = el("input", { id, type: "text", inputmode: "numeric", value: (value || []).join(", "), "data-field": path });
    else input = el("input", { id, type: kind === "number" ? "number" : "text", value: value ?? "", "data-field": path });
    box.append(el("label", { for: id, text: t(`admin.field.${path}`) }), input, message);
  }
}

// A group of the policy chosen by its name (the helpdesk's protected group), never typed as an id.
function groupField(id, path, value) {
  const input = el("input", { id, type: "search", autocomplete: "off", maxlength: "100", "data-field": path,
    "data-group-id": value || "", "aria-describedby": `${id}-chosen`, "aria-controls": `${id}-results` });
  const results = el("ul", { id: `${id}-results`, class: "choices", "aria-label": t("admin.group.results") });
  const chosen = el("p", { id: `${id}-chosen`, class: "chosen", "aria-live": "polite",
    text: t(value ? "admin.protected.kept" : "admin.protected.none") });
  const choose = (group) => {
    input.dataset.groupId = group?.id || "";
    chosen.textContent = group ? t("admin.protected.chosen", { name: group.displayName }) : t("admin.protected.none");
  };
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => act(input, async () => {
      const { data } = await call("GET", `groups?${new URLSearchParams({ search: input.value.trim() })}`);
      results.replaceChildren(...data.value.map((group) => el("li", {}, el("button", {
        type: "button", class: "choice", "data-group-id": group.id, onclick: () => choose(group) },
        el("span", { class: "choice-name", text: group.displayName })))));
    }), 250);
  });
  const clear = el("button", { type: "button", class: "secondary", text: t("admin.protected.clear"),
    onclick: () => choose(null) });
  return el("div", { class: "group-field", "data-feedback-zone": true },
    el("label", { for: id, text: t(`admin.field.${path}`) }), input, results, chosen, clear);
}

function readPolicyFields() {
  const values = structuredClone(policy);  // scope, group and guests stay as saved: they are set elsewhere
  for (const [path, kind, options] of POLICY_FIELDS) {
    const input = $(`#${fieldId(path)}`);
    let value;
    if (kind === "checkbox") value = input.checked;
    else if (kind === "number") value = input.value === "" ? null : Number(input.value);
    else if (kind === "lines") value = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (kind === "numbers") value = input.value.split(/[\s,;]+/).filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    else if (kind === "select") value = typeof options[0] === "number" ? Number(input.value) : input.value;
    else if (kind === "group") value = input.dataset.groupId || null;
    else value = input.value.trim() || null;
    setPath(values, path, value);
  }
  return values;
}

async function readPolicy() {
  const { data, headers } = await call("GET", "policy");
  policy = data;
  policyETag = headers.get("ETag");
  return data;
}

async function loadPolicy() { renderPolicyFields(await readPolicy()); }

$("#policy-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const button = $("#policy-save");
  act(button, async () => {
    const { data, headers } = await call("PUT", "policy", { body: readPolicyFields(), headers: { "If-Match": policyETag } });
    policy = data;
    policyETag = headers.get("ETag");
    renderPolicyFields(data);
    say(button, t("admin.policy.saved"));
  });
});

// ---- Who may reset: scope, a group picked by name, guests; the run's progress; the scope's eligibility -------
let chosenGroup = null;        // {id, displayName, userCount}
let groupSearch = { text: "", continuation: null, seq: 0 };
let lastRun = null;

function scopeInView() {
  const scope = $("#enable-scope").value;
  return { scope, groupId: scope === "selected" ? chosenGroup?.id ?? null : null, includeGuests: $("#enable-guests").checked };
}

function showPicker() {
  const selected = $("#enable-scope").value === "selected";
  $("#group-picker").hidden = !selected;
  if (selected && !$("#group-results").children.length) findGroups(false);
}

function showChosen() {
  $("#group-chosen").textContent = chosenGroup
    ? t("admin.group.chosen", { name: chosenGroup.displayName, users: tn("admin.users", chosenGroup.userCount ?? 0) }) : "";
}

function groupLabel(group) {
  return group.userCount === null || group.userCount === undefined ? group.displayName
    : `${group.displayName} · ${tn("admin.users", group.userCount)}`;
}

async function findGroups(more) {
  const text = $("#group-search").value.trim();
  const seq = ++groupSearch.seq;
  const query = new URLSearchParams({ search: text });
  if (more && groupSearch.continuation) query.set("continuation", groupSearch.continuation);
  const { data } = await call("GET", `groups?${query}`);
  if (seq !== groupSearch.seq) return;  // a newer search answered first: this one is stale
  groupSearch = { text, continuation: data.continuation, seq };
  const items = data.value.map((group) => el("li", {}, el("button", {
    type: "button", class: "choice", "data-group-id": group.id,
    "aria-pressed": String(chosenGroup?.id === group.id),
    onclick: () => chooseGroup(group),
  }, el("span", { class: "choice-name", text: group.displayName }),
     el("span", { class: "hint", text: ` · ${tn("admin.users", group.userCount ?? 0)}` }))));
  if (more) $("#group-results").append(...items); else $("#group-results").replaceChildren(...items);
  $("#group-more").hidden = !data.continuation;
  $("#group-count").textContent = data.total === null ? "" : tn("admin.group.found", data.total);
}

function chooseGroup(group) {
  chosenGroup = group;
  document.querySelectorAll("#group-results button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.groupId === group.id)));
  showChosen();
  clearFeedback();
  loadEligibility();
}

let searchTimer = null;
$("#group-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => act($("#group-search"), () => findGroups(false)), 250);
});
$("#group-more").addEventListener("click", () => act($("#group-more"), () => findGroups(true)));
$("#enable-scope").addEventListener("change", () => { clearFeedback(); showPicker(); loadEligibility(); });
$("#enable-guests").addEventListener("change", () => { clearFeedback(); loadEligibility(); });

function showRun(run) {
  lastRun = run;
  $("#enable-progress-box").hidden = false;
  const percent = run.state === "completed" ? 100 : Math.floor(run.percent ?? 0);
  $("#enable-progress").value = percent;
  $("#enable-progress").setAttribute("aria-valuetext", `${percent}%`);
  const phase = run.phase || (run.state === "completed" ? "done" : run.state === "queued" ? "waiting" : "checking");
  const values = { percent, processed: run.usersProcessed ?? 0, total: run.usersTotal ?? "?", inScope: run.inScope ?? 0,
    parts: run.sweepsTotal ?? 16, done: run.sweepsDone ?? 0 };
  $("#enable-status").textContent = phase === "done" ? tn("admin.enable.completed", values.inScope, values)
    : t(`admin.enable.${phase}`, values);
}

async function follow(id) {
  for (;;) {
    const { data } = await call("GET", `enablement/${id}`);
    showRun(data);
    if (data.state === "completed" || data.state === "failed") return data;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// The form waits (disabled) until it shows what is saved, so nothing a person chooses is overwritten by the load.
async function loadEnablement() {
  $("#enable-fields").disabled = true;
  let current, runs;
  try {
    [current, runs] = await Promise.all([readPolicy(), call("GET", "enablement")]);
  } finally {
    $("#enable-fields").disabled = false;
  }
  $("#enable-scope").value = current.scope;
  $("#enable-guests").checked = Boolean(current.includeGuests);
  chosenGroup = current.groupId ? { id: current.groupId, displayName: chosenGroup?.id === current.groupId ? chosenGroup.displayName : "", userCount: chosenGroup?.userCount } : null;
  showPicker();
  const latest = runs.data.value[0];
  const eligibility = loadEligibility();
  if (latest) {
    showRun(latest);
    if (latest.state === "queued" || latest.state === "running") await follow(latest.id);
  }
  await eligibility;
}

$("#enable-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const button = $("#enable-start");
  act(button, async () => {
    const wanted = scopeInView();
    if (wanted.scope === "selected" && !wanted.groupId) {  // never send what the API refuses
      throw new ApiError(400, { title: t("admin.group.missing"), errors: [{ field: "groupId", text: t("admin.group.missing") }] });
    }
    await readPolicy();
    const changed = wanted.scope !== policy.scope || wanted.groupId !== (policy.groupId || null)
      || wanted.includeGuests !== Boolean(policy.includeGuests);
    let runId;
    if (changed) {  // the policy is the one source of truth of the scope: saving it starts the run
      const { data, headers } = await call("PUT", "policy", { body: { ...policy, ...wanted }, headers: { "If-Match": policyETag } });
      policy = data;
      policyETag = headers.get("ETag");
      runId = (headers.get("Location") || "").split("/").pop();
    }
    if (!runId) runId = (await call("POST", "enablement", { body: { scope: wanted.scope, groupId: wanted.groupId } })).data.id;
    showRun({ state: "queued", phase: "waiting", percent: 0 });
    const run = await follow(runId);
    if (run.state === "failed") throw new ApiError(500, { title: t("admin.enable.failed") });
  }, { fields: { groupId: "#group-search", scope: "#enable-scope", includeGuests: "#enable-guests" } });
});

// The eligibility of the scope in view, before it is applied: counted over those users, naming who is affected.
let eligibilitySeq = 0;
async function loadEligibility() {
  const seq = ++eligibilitySeq;
  const wanted = scopeInView();
  const query = new URLSearchParams({ scope: wanted.scope, includeGuests: String(wanted.includeGuests) });
  if (wanted.groupId) query.set("groupId", wanted.groupId);
  if (wanted.scope === "selected" && !wanted.groupId) {
    $("#eligibility-scope").textContent = t("admin.eligibility.chooseGroup");
    $("#eligibility-findings").replaceChildren();
    $("#eligibility-affected-box").hidden = true;
    return;
  }
  $("#eligibility-scope").textContent = t("admin.eligibility.counting");
  let data;
  try {
    data = (await call("GET", `tenant/eligibility?${query}`)).data;
  } catch (error) {
    if (seq === eligibilitySeq) {
      if (error instanceof ApiError && error.status === 401) sessionEnded();
      else renderProblem($("#eligibility-scope"), error);
    }
    return;
  }
  if (seq !== eligibilitySeq) return;
  const scope = data.scope;
  if (scope.groupName && chosenGroup && chosenGroup.id === scope.groupId) {
    chosenGroup = { ...chosenGroup, displayName: scope.groupName, userCount: scope.users };
    showChosen();
  }
  const who = scope.scope === "selected" ? t("admin.eligibility.group", { name: scope.groupName || "" })
    : t(`admin.eligibility.${scope.scope}`);
  $("#eligibility-scope").textContent = t("admin.eligibility.counted", { who, users: tn("admin.users", scope.users ?? 0) });
  $("#eligibility-severity").textContent = t(`admin.severity.${data.severity}`);
  $("#eligibility-findings").replaceChildren(...data.findings.map((f) =>
    el("li", { "data-code": f.code }, el("strong", { text: `${t(`admin.severity.${f.severity}`)}: ` }), f.message)));
  $("#eligibility-affected").replaceChildren(...data.affected.map((u) =>
    el("li", { "data-user": u.id, text: u.userPrincipalName ? `${u.displayName} (${u.userPrincipalName})` : u.displayName })));
  $("#eligibility-more").textContent = data.affectedMore ? tn("admin.eligibility.more", data.affectedMore) : "";
  $("#eligibility-affected-box").hidden = !data.affected.length;
}

// ---- Compliance: summary, charts, per-user table with filters and CSV --------------------------------------
let currentRun = null;
let runsShown = [];
let usersShown = [];
let usersContinuation = null;

async function loadCompliance() {
  const recovered = (await call("GET", "recoveries?days=30")).data;  // beside the runs: who got back in, and how
  document.querySelectorAll("[data-recoveries]").forEach((td) => { td.textContent = String(recovered[td.dataset.recoveries]); });
  const { data } = await call("GET", "compliance/runs");
  runsShown = data.value.filter((r) => r.state === "completed").reverse();  // oldest first for the chart
  const latest = data.value[0];
  $("#compliance-state").textContent = latest ? t(`admin.compliance.state.${latest.state}`) : t("admin.compliance.none");
  const shown = runsShown.at(-1);
  if (!shown) return;
  currentRun = (await call("GET", `compliance/runs/${shown.id}`)).data;
  renderCompliance();
  await loadUsers(false);
}

function renderCompliance() {
  if (!currentRun) return;
  const counts = { users: currentRun.users, capable: currentRun.capable, registered: currentRun.users - currentRun.notRegistered,
    enabled: currentRun.users - currentRun.notEnabled, notRegistered: currentRun.notRegistered, reconfirmOverdue: currentRun.reconfirmOverdue };
  document.querySelectorAll("[data-count]").forEach((cell) => { cell.textContent = String(counts[cell.dataset.count]); });
  const dates = runsShown.map((r) => new Date(r.completedAt || r.createdAt).toLocaleDateString(lang()));
  lineChart($("#chart-history"), { title: t("admin.chart.overTime"), labels: dates, series: [
    { name: t("admin.compliance.capable"), values: runsShown.map((r) => r.capable) },
    { name: t("admin.compliance.registered"), values: runsShown.map((r) => r.users - r.notRegistered) },
    { name: t("admin.compliance.enabled"), values: runsShown.map((r) => r.users - r.notEnabled) }] });
  barChart($("#chart-methods"), { title: t("admin.chart.methods"), empty: t("admin.chart.empty"), items: Object.entries(currentRun.byMethod)
    .map(([key, value]) => ({ key, label: t(`method.${key}`), value })) });
  barChart($("#chart-reasons"), { title: t("admin.chart.reasons"), empty: t("admin.chart.empty"), items: currentRun.topReasons
    .map((r) => ({ key: r.reason, label: t(`reason.${r.reason}`), value: r.users })) });
}

function userQuery(extra = {}) {
  const query = new URLSearchParams();
  for (const name of ["status", "method", "reason"]) { const v = $(`#filter-${name}`).value; if (v) query.set(name, v); }
  for (const [k, v] of Object.entries(extra)) query.set(k, v);
  return query;
}

// A person by name and user name; the object id only when the row has neither (rows written before names were).
function person(name, upn, id) {
  if (!name && !upn) return el("span", { class: "id", text: id || "" });
  return el("span", {}, el("span", { class: "person-name", text: name || upn }), upn && name ? el("span", { class: "hint upn", text: upn }) : null);
}

function renderUsers() {
  $("#users").replaceChildren(...usersShown.map((u) => el("tr", { "data-user": u.userId },
    el("td", { "data-label": t("admin.col.user") }, person(u.displayName, u.userPrincipalName, u.userId)),
    el("td", { "data-label": t("admin.filter.status"), text: t(`status.${u.status}`) }),
    el("td", { "data-label": t("admin.col.methods"), text: u.methods.map((m) => t(`method.${m}`)).join(", ") }),
    el("td", { "data-label": t("admin.filter.reason"), text: u.reasons.map((r) => t(`reason.${r}`)).join(", ") }))));
}

async function loadUsers(more) {
  if (!currentRun) return;
  const query = userQuery({ pageSize: "50" });
  if (more && usersContinuation) query.set("continuation", usersContinuation);
  const { data } = await call("GET", `compliance/runs/${currentRun.id}/users?${query}`);
  usersShown = more ? [...usersShown, ...data.value] : data.value;
  renderUsers();
  usersContinuation = data.continuation;
  $("#users-more").hidden = !usersContinuation;
}

// A CSV needs the token, so it is fetched and handed to the browser as a file.
async function download(path, filename) {
  const response = await fetch(`/api/manage/${path}`, { headers: { Authorization: `Bearer ${session.token}`, Accept: "text/csv", "Accept-Language": lang() } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({ title: t("error.generic") })));
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
}

$("#users-filter").addEventListener("submit", (event) => { event.preventDefault(); act($("#users-apply"), () => loadUsers(false)); });
$("#users-more").addEventListener("click", () => act($("#users-more"), () => loadUsers(true)));
$("#users-csv").addEventListener("click", () => act($("#users-csv"), () =>
  download(`compliance/runs/${currentRun.id}/users?${userQuery({ format: "csv" })}`, "compliance-users.csv")));
$("#compliance-run").addEventListener("click", () => act($("#compliance-run"), async () => {
  const { data } = await call("POST", "compliance/runs", { body: { sendReminders: false } });
  for (;;) {
    const run = (await call("GET", `compliance/runs/${data.id}`)).data;
    $("#compliance-state").textContent = t(`admin.compliance.state.${run.state}`);
    if (run.state === "completed" || run.state === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await loadCompliance();
}));

// ---- Password expiry: who expires when, reminders per stage, per-user table with CSV ---------------------------
let expiryRun = null;
let expiryContinuation = null;

async function loadExpiry() {
  const { data } = await call("GET", "password-expiry/runs");
  const latest = data.value[0];
  $("#expiry-state").textContent = latest ? t(`admin.expiry.state.${latest.state}`) : t("admin.expiry.none");
  const shown = data.value.find((r) => r.state === "completed");
  if (!shown) return;
  expiryRun = (await call("GET", `password-expiry/runs/${shown.id}`)).data;
  const counts = { users: expiryRun.users, within7: expiryRun.within7, within14: expiryRun.within14,
    within30: expiryRun.within30, expired: expiryRun.expired, never: expiryRun.byState.never };
  document.querySelectorAll("[data-expiry]").forEach((td) => { td.textContent = String(counts[td.dataset.expiry]); });
  $("#expiry-stages").replaceChildren(...Object.entries(expiryRun.remindersByStage).map(([stage, sent]) =>
    el("tr", { "data-stage": stage }, el("td", { "data-label": t("admin.expiry.stage"), text: stage }),
      el("td", { "data-label": t("admin.expiry.sent"), text: String(sent) }))));
  await loadExpiryUsers(false);
}

function expiryQuery(extra = {}) {
  const query = new URLSearchParams($("#expiry-which").value);
  for (const [k, v] of Object.entries(extra)) query.set(k, v);
  return query;
}

async function loadExpiryUsers(more) {
  if (!expiryRun) return;
  const query = expiryQuery({ pageSize: "50" });
  if (more && expiryContinuation) query.set("continuation", expiryContinuation);
  const { data } = await call("GET", `password-expiry/runs/${expiryRun.id}/users?${query}`);
  const rows = data.value.map((u) => el("tr", { "data-user": u.userId },
    el("td", { "data-label": t("admin.col.user") }, person(u.displayName, u.userPrincipalName, u.userId)),
    el("td", { "data-label": t("admin.filter.status"), text: t(`expiry.state.${u.state}`) }),
    el("td", { "data-label": t("admin.expiry.expiresAt"), text: u.expiresAt ? new Date(u.expiresAt).toLocaleString(lang()) : "" }),
    el("td", { "data-label": t("admin.expiry.daysLeft"), text: u.daysLeft == null ? "" : String(u.daysLeft) }),
    el("td", { "data-label": t("admin.expiry.reminderStage"), text: u.reminderStage == null ? "" : String(u.reminderStage) })));
  if (more) $("#expiry-users").append(...rows); else $("#expiry-users").replaceChildren(...rows);
  expiryContinuation = data.continuation;
  $("#expiry-more").hidden = !expiryContinuation;
}

$("#expiry-filter").addEventListener("submit", (event) => { event.preventDefault(); act($("#expiry-apply"), () => loadExpiryUsers(false)); });
$("#expiry-more").addEventListener("click", () => act($("#expiry-more"), () => loadExpiryUsers(true)));
$("#expiry-csv").addEventListener("click", () => act($("#expiry-csv"), () =>
  download(`password-expiry/runs/${expiryRun.id}/users?${expiryQuery({ format: "csv" })}`, "password-expiry-users.csv")));
$("#expiry-run-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("#expiry-run"), async () => {
    const { data } = await call("POST", "password-expiry/runs", { body: { sendReminders: $("#expiry-send").checked } });
    for (;;) {
      const current = (await call("GET", `password-expiry/runs/${data.id}`)).data;
      $("#expiry-state").textContent = t(`admin.expiry.state.${current.state}`);
      if (current.state === "completed" || current.state === "failed") break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    await loadExpiry();
  });
});

// ---- On-premises agents, from their heartbeats ----------------------------------------------------------------
async function loadAgents() {
  const { data } = await call("GET", "onprem/agents");
  $("#onprem-summary").textContent = data.agents.length
    ? t("admin.onprem.live", { live: data.live, total: data.agents.length }) : t("admin.onprem.none");
  $("#onprem-agents tbody").replaceChildren(...data.agents.map((a) => {
    const state = !a.live ? "silent" : a.holdsServiceKey === false ? "wrongKey" : "live";
    return el("tr", { "data-agent": a.agentId },
      el("th", { scope: "row", text: `${a.agentId} (${a.version})` }),
      el("td", { "data-label": t("admin.onprem.state"), "data-state": state, text: t(`admin.onprem.state.${state}`) }),
      el("td", { "data-label": t("admin.onprem.heartbeat"), text: new Date(a.lastHeartbeat).toLocaleString(lang()) }),
      el("td", { "data-label": t("admin.onprem.dcs"), text: `${a.dcsReached.join(", ") || "-"} (${a.dcsReached.length}/${a.dcsConfigured})` }),
      el("td", { "data-label": t("admin.onprem.jobs"), text: `${a.jobsApplied} / ${a.jobsRefused} / ${a.jobsFailed}` }),
      el("td", { "data-label": t("admin.onprem.ous"), text: a.allowedOus.join("; ") || t("admin.onprem.allOus") }),
      el("td", { "data-label": t("admin.onprem.expiry"), "data-expiry-report": a.expiryScannedAt ? "yes" : "no",
        text: a.expiryScannedAt
          ? t("admin.onprem.expiryReport", { accounts: a.expiryAccounts, at: new Date(a.expiryScannedAt).toLocaleString(lang()) })
          : t("admin.onprem.expiryNone") }));
  }));
}

// ---- Audit: the last week on opening, searched by user name or object id; names and activities in plain words --
let auditShown = [];

function auditQuery(extra = {}) {
  const query = new URLSearchParams(extra);
  const from = $("#audit-from").value, to = $("#audit-to").value;
  if (from) query.set("from", new Date(from).toISOString());
  if (to) query.set("to", new Date(to).toISOString());
  if ($("#audit-user").value.trim()) query.set("user", $("#audit-user").value.trim());
  if ($("#audit-activity").value) query.set("activity", $("#audit-activity").value);
  return query;
}

function activityOptions() {
  const select = $("#audit-activity");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: t("admin.filter.any") }),
    ...ACTIVITIES.map((a) => el("option", { value: a, text: t(`activity.${a}`), selected: a === chosen })));
}

// Who did it, in words: the service itself, someone not signed in (a reset that named nobody yet), or the user.
function actorOf(event) {
  if (event.actorKind === "system") return t("actor.system");
  if (event.actorId === "anonymous") return t("actor.anonymous");
  return event.actorDisplay || event.actorId;
}

function renderAudit() {
  $("#audit-rows").replaceChildren(...auditShown.map((e) => el("tr", {},
    el("td", { "data-label": t("admin.audit.time"), text: new Date(e.time).toLocaleString(lang()) }),
    el("td", { "data-label": t("admin.audit.activity"), text: t(`activity.${e.activity}`) }),
    el("td", { "data-label": t("admin.audit.outcome"), text: t(`outcome.${e.outcome}`) }),
    el("td", { "data-label": t("admin.audit.actor"), text: actorOf(e) }),
    el("td", { "data-label": t("admin.audit.target") }, e.targetUserId ? person(e.targetDisplayName, e.targetUserPrincipalName, e.targetUserId) : ""))));
}

async function searchAudit() {
  const { data } = await call("GET", `audit?${auditQuery({ pageSize: "100" })}`);
  auditShown = data.value;
  renderAudit();
  if (!data.value.length) say($("#audit-search"), t("admin.audit.none"));
}

async function loadAudit() {
  activityOptions();
  await searchAudit();
}

const ACTIVITIES = ["Reset password (self-service)", "Self-service password reset flow activity progress",
  "Blocked from self-service password reset", "User registered security info",
  "User registered all required security info", "User deleted security info", "Reset password (by admin)",
  "Update self-service password reset policy", "Request self-service password reset enablement",
  "Complete self-service password reset enablement", "Synchronize self-service password reset scope",
  "Start compliance run", "Complete compliance run", "Send registration reminder",
  "Update password expiration policy", "Update user password never expires", "Start password expiry run",
  "Complete password expiry run", "Send password expiry reminder", "Unlock user account (self-service)",
  "Change password (self-service)", "Admin registered security info", "Verify caller identity (helpdesk)",
  "Pause helpdesk verification", "Unblock user from self-service password reset (helpdesk)",
  "Unlock user account (helpdesk)", "Send password reset link (helpdesk)", "Send Temporary Access Pass link (helpdesk)",
  "Approve helpdesk action", "Reset password (helpdesk-verified)"];

$("#audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("#audit-search"), searchAudit, { fields: { user: "#audit-user", from: "#audit-from", to: "#audit-to" } });
});
$("#audit-csv").addEventListener("click", () => act($("#audit-csv"), () => download(`audit?${auditQuery({ format: "csv" })}`, "audit.csv"),
  { fields: { user: "#audit-user", from: "#audit-from", to: "#audit-to" } }));

// ---- A language switch re-words what is on screen, keeping what was typed -------------------------------------
document.addEventListener("sspr:language", () => {
  if (!session) return;
  if (policy && $("#policy-fields").children.length) {
    const typed = readPolicyFields();
    renderPolicyFields(typed);
  }
  if (lastRun) showRun(lastRun);
  showChosen();
  renderCompliance();
  renderUsers();
  activityOptions();
  renderAudit();
  if (openedTab === "enablement") loadEligibility();
});

$("#signin").addEventListener("click", () => signIn());
$("#signout").addEventListener("click", () => signOut());

(async () => {
  session = await startSignedInPage();
  if (session) {
    const wanted = location.hash.slice(1);
    const tab = ALIASES[wanted] || wanted;
    openTab(loaders[tab] ? tab : "policy");
  }
})();
