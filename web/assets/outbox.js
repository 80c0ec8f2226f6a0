// The dev run's outbox: every mail and text the service sent, newest first, so a person can finish a reset.
import { $, api, el, showError, startPage, t } from "./common.js";

// Mail bodies are HTML written by the service; shown as text (never as markup) so nothing in them can run.
function textOf(body, contentType) {
  if ((contentType || "").toLowerCase() !== "html") return body || "";
  return new DOMParser().parseFromString(body || "", "text/html").body.textContent.replace(/\n{3,}/g, "\n\n").trim();
}

async function load() {
  try {
    const { data } = await api("GET", "pages/dev/outbox.json");
    showError($("#error"), null);
    $("#count").textContent = t("outbox.count", { count: data.value.length });
    $("#messages").replaceChildren(...data.value.map((m) => el("article", { class: "panel", "data-channel": m.channel },
      el("h2", { text: m.channel === "mail" ? m.subject : t(`outbox.${m.channel}`) }),
      el("p", { class: "hint", text: `${new Date(m.time).toLocaleString(document.documentElement.lang)} · ${t("outbox.to")} ${(m.to || []).join(", ")}` }),
      el("pre", { class: "message-body", text: textOf(m.body, m.contentType) }))));
  } catch (error) { showError($("#error"), error); }
}

$("#refresh").addEventListener("click", load);
document.addEventListener("sspr:language", load);
startPage();
