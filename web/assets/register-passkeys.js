// The registration page's passkeys: create one (named), list them, remove one.
import { $, ApiError, el, t } from "./common.js";
import { createPasskey, passkeysSupported, wasCancelled } from "./passkeys.js";

let page = null;  // { call, run, say(text, control), load } from register.js

export function setupPasskeys(hooks) {
  page = hooks;
  $("#passkey-form").addEventListener("submit", (event) => {
    event.preventDefault();
    page.run($("#passkey-add"), addPasskey);
  });
}

async function addPasskey() {
  const name = $("#passkey-name").value.trim();
  if (!name) throw new ApiError(400, { title: t("register.passkey.nameMissing") });
  if (!passkeysSupported()) throw new ApiError(400, { title: t("register.passkey.unsupported") });
  const { data: setup } = await page.call("POST", "/passkeys/options");
  let credential;
  try { credential = await createPasskey(setup.publicKey); }
  catch (error) {
    if (wasCancelled(error)) throw new ApiError(400, { title: t("register.passkey.cancelled") });
    throw new ApiError(400, { title: t("register.passkey.unsupported"), detail: error.message });
  }
  await page.call("POST", "/passkeys", { setupId: setup.setupId, name, credential });
  $("#passkey-name").value = "";
  await page.load();
  page.say(t("register.passkey.added", { name }), $("#add-passkey"));
}

async function removePasskey(button, passkey) {
  await page.run(button, async () => {
    const path = `/passkeys/${encodeURIComponent(passkey.id)}`;
    try { await page.call("DELETE", path); }
    catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409 || !window.confirm(error.problem.title)) throw error;
      await page.call("DELETE", `${path}?confirm=true`);
    }
    await page.load();
    page.say(t("register.passkey.removed", { name: passkey.name }), $("#methods"));  // the list may be gone
  });
}

export function renderPasskeys(view) {
  const date = (iso) => new Date(iso).toLocaleDateString(document.documentElement.lang);
  const list = view.passkeys || [];
  $("#passkey-list").hidden = list.length === 0;
  $("#passkeys").replaceChildren(...list.map((p) => el("li", { "data-passkey": p.name },
    el("strong", { text: p.name }), " ",
    el("span", { class: "hint", text: t("register.passkey.details", {
      added: date(p.createdAt), used: p.lastUsedAt ? date(p.lastUsedAt) : t("register.passkey.never") }) }),
    p.backedUp ? el("span", { class: "hint", text: ` ${t("register.passkey.synced")}` }) : null, " ",
    el("button", { type: "button", class: "secondary", text: t("register.remove"),
      "aria-label": `${t("register.remove")} ${p.name}`, onclick: (e) => removePasskey(e.target, p) }))));
}
