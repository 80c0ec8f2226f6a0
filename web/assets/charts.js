// Charts drawn as inline SVG (no library): a line chart over time and horizontal bars. Each has a title and a
// text table for screen readers, so the numbers are never only in the picture.
const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b5cad", "#1b6e20", "#8a4b00", "#6b2c91", "#a4161a"];

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function lineChart(container, { labels, series, title }) {
  const width = 360, height = 200, left = 36, bottom = 40, top = 10, right = 10;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => left + (labels.length < 2 ? (width - left - right) / 2 : i * (width - left - right) / (labels.length - 1));
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  chart.append(svg("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: "#767680" }));
  chart.append(svg("text", { x: 2, y: y(max) + 4 }, String(max)), svg("text", { x: 2, y: y(0) + 4 }, "0"));
  series.forEach((s, k) => {
    const points = s.values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    chart.append(svg("polyline", { points, fill: "none", stroke: COLOURS[k], "stroke-width": 2 }));
    s.values.forEach((v, i) => chart.append(svg("circle", { cx: x(i), cy: y(v), r: 3, fill: COLOURS[k] })));
    chart.append(svg("rect", { x: left + k * 110, y: height - 14, width: 10, height: 10, fill: COLOURS[k] }),
      svg("text", { x: left + 14 + k * 110, y: height - 5 }, s.name));
  });
  if (labels.length) {
    chart.append(svg("text", { x: left, y: height - 22 }, labels[0]));
    if (labels.length > 1) chart.append(svg("text", { x: width - right, y: height - 22, "text-anchor": "end" }, labels[labels.length - 1]));
  }
  container.replaceChildren(chart, dataTable(["", ...series.map((s) => s.name)],
    labels.map((label, i) => [label, ...series.map((s) => s.values[i])])));
}

export function barChart(container, { items, title, empty }) {
  if (!items.length) { container.replaceChildren(Object.assign(document.createElement("p"), { className: "hint", textContent: empty })); return; }
  const width = 360, row = 24, labelWidth = 150;
  const height = Math.max(row, items.length * row) + 4;
  const max = Math.max(1, ...items.map((i) => i.value));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  items.forEach((item, i) => {
    const w = (width - labelWidth - 40) * item.value / max;
    chart.append(svg("text", { x: 0, y: i * row + 16 }, item.label),
      svg("rect", { x: labelWidth, y: i * row + 4, width: Math.max(w, 1), height: row - 8, fill: COLOURS[0] }),
      svg("text", { x: labelWidth + w + 4, y: i * row + 16, "data-value": item.key }, String(item.value)));
  });
  container.replaceChildren(chart, dataTable(["", ""], items.map((i) => [i.label, i.value])));
}

// The numbers as a table for screen readers, in a visually hidden box (a table itself ignores the clipping).
function dataTable(head, rows) {
  const box = document.createElement("div");
  box.className = "sr-only";
  const table = document.createElement("table");
  box.append(table);
  const headRow = table.createTHead().insertRow();
  head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; headRow.append(th); });
  const body = table.createTBody();
  rows.forEach((r) => { const tr = body.insertRow(); r.forEach((c) => { tr.insertCell().textContent = String(c); }); });
  return box;
}
