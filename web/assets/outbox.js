// The dev run's outbox: every mail and text the service sent, newest first, so a person can finish a reset.
import { $, api, el, showError, startPage, t, tn } from "./common.js";

const BLOCKS = new Set(["P", "DIV", "H1", "H2", "H3", "H4", "H5", "H6", "LI", "TR", "TABLE", "UL", "OL", "BLOCKQUOTE"]);

// A mail's HTML as the text a person reads, paragraphs kept apart. Shown as text (never as markup), so nothing in
// it can run; its inline styles are dropped before parsing, as this page's Content-Security-Policy refuses them.
function textOf(body, contentType) {
  if ((contentType || "").toLowerCase() !== "html") return body || "";
  const quiet = (body || "").replace(/\sstyle\s*=\s*("[^"]*"|'[^']*')/gi, "");
  const doc = new DOMParser().parseFromString(quiet, "text/html");
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent.replace(/\s+/g, " ")); return; }
    if (node.nodeName === "BR") { parts.push("\n"); return; }
    node.childNodes.forEach(walk);
    if (BLOCKS.has(node.nodeName)) parts.push("\n\n");
  };
  walk(doc.body);
  return parts.join("").replace(/[ \t]*\n[ \t]*/g, "\n").replace(/\n{3,}/g, "\n\n").trim();
}

// The images a mail shows inline (the organisation's logo), as they would appear in a mail client.
function inlineImages(message) {
  return (message.attachments || []).filter((a) => a.isInline && /^image\/(png|jpeg)$/.test(a.contentType || "") && a.contentBytes)
    .map((a) => el("img", { class: "mail-image", src: `data:${a.contentType};base64,${a.contentBytes}`, alt: a.name || "" }));
}

async function load() {
  try {
    const { data } = await api("GET", "pages/dev/outbox.json");
    showError($("#error"), null);
    $("#count").textContent = tn("outbox.count", data.value.length);
    $("#messages").replaceChildren(...data.value.map((m) => el("article", { class: "panel", "data-channel": m.channel },
      el("h2", { text: m.channel === "mail" ? m.subject : t(`outbox.${m.channel}`) }),
      el("p", { class: "hint", text: `${new Date(m.time).toLocaleString(document.documentElement.lang)} · ${t("outbox.to")} ${(m.to || []).join(", ")}` }),
      ...inlineImages(m),
      el("pre", { class: "message-body", text: textOf(m.body, m.contentType) }))));
  } catch (error) { showError($("#error"), error); }
}

$("#refresh").addEventListener("click", load);
document.addEventListener("sspr:language", load);
startPage();
