// The explore page's script: explore.py inlines it, and explore_page.css, into the one-file page.
// It draws the five parts from the JSON in <script id="data">; text only ever goes in as text.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const V = D.V, ORDER = D.order, MODELS = D.models;
const SVG = "http://www.w3.org/2000/svg";
const charId = new Map(D.tokens.map((t, i) => [t, i]).slice(1));
const SPACES = new Set(D.spaces);
const NAMES = D.model_names;  // "count model", …: layout.MODEL_NAMES
const COLOUR = (() => {  // the colours drawn with, from the variables explore_page.css declares
  const css = getComputedStyle(document.documentElement);
  const get = name => css.getPropertyValue("--" + name).trim();
  const rgb = hex => [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  return {
    count: get("count"), neural: get("neural"), ink: get("ink"), inkOnDark: get("ink-on-dark"), axis: get("axis"),
    segment: get("segment"), segmentAlt: get("segment-alt"), drawn: get("drawn"),
    heatLow: rgb(get("heat-low")), heatHigh: rgb(get("heat-high")),
  };
})();

// --- small helpers: text only ever goes in as text ------------------------------------------
function el(tag, attrs, text, parent) {
  const svg = ["svg", "rect", "text", "line", "polyline", "g", "title", "path", "defs", "clipPath"].includes(tag);
  const e = svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
function startCtx() { return Array(Math.max(0, ORDER - 1)).fill(0); }  // where every name starts: N−1 boundaries
function keyOf(ctx) { return ctx.join(","); }  // a context's name in the page (its token ids, oldest first)
const heatIndex = new Map(D.heat.rows.map((ctx, i) => [keyOf(ctx), i]));
function countsRow(ctx) { const i = heatIndex.get(keyOf(ctx)); return i === undefined ? null : D.heat.counts[i]; }
const heatColumn = new Map(D.heat.cols.map((c, j) => [c, j]));  // token id → its column in counts
function countOf(ctx, token) { return countsRow(ctx)[heatColumn.get(token)]; }

// --- the model, read as bigram reads it (bigram/backoff.py, bigram/mixture.py) ------------------
// A table: levels[j] holds the known contexts of j tokens, sorted by key (their ids as base-V
// digits), each row listing tokens with log P, and a backoff log β for every other token. P(w | h):
// listed at the longest known suffix of h, else β times P at the next shorter one, down to 1/V.
// A mix: Σ λᵢ Pᵢ over its parts, a part sitting out where the known suffix holds a token it lacks.
// A row the page left out (`gone`, or a level `dropped`) reads as null: the page says so.
function bytesOf(s) { const bin = atob(s), u8 = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i); return u8.buffer; }
function decodeLevel(lv) {
  if (!lv || lv.dropped) return lv;
  return { n: lv.n, big: lv.big, keys: new (lv.big ? BigInt64Array : Float64Array)(bytesOf(lv.keys)),
    ptr: new Int32Array(bytesOf(lv.ptr)), cols: new (V <= 65536 ? Uint16Array : Int32Array)(bytesOf(lv.cols)),
    logp: new Float64Array(bytesOf(lv.logp)), backoff: new Float64Array(bytesOf(lv.backoff)),
    gone: lv.gone ? new Uint8Array(bytesOf(lv.gone)) : null };
}
function decodeModel(t) {
  if (t.kind === "mix") {
    const parts = t.parts.map(p => {
      let own = null;
      if (p.own) { own = new Uint8Array(V); for (const id of new Int32Array(bytesOf(p.own))) own[id] = 1; }
      return { weight: p.weight, own, model: decodeModel(p.model) };
    });
    return { kind: "mix", order: t.order, parts, merged: parts.some(p => p.own) };
  }
  return { kind: "table", order: t.order, levels: t.levels.map(decodeLevel) };
}
const TABLES = Object.fromEntries(MODELS.map(m => [m, decodeModel(D.tables[m])]));
const LEFT_OUT = -2;  // knownRow: the row exists in the model, but this page does not carry it
function knownRow(lv, ctx, j) {  // findRow in a level that may be missing or cut: the row, −1, or LEFT_OUT
  if (!lv) return -1;
  if (lv.dropped) return LEFT_OUT;
  const r = findRow(lv, ctx, j);
  return r >= 0 && lv.gone && lv.gone[r] ? LEFT_OUT : r;
}
function findRow(lv, ctx, j) {  // the row of the context's last j tokens in a level, or −1
  const tail = ctx.slice(ctx.length - j);
  const key = lv.big ? tail.reduce((a, d) => a * BigInt(V) + BigInt(d), 0n) : tail.reduce((a, d) => a * V + d, 0);
  let lo = 0, hi = lv.n - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, k = lv.keys[mid];
    if (k === key) return mid;
    if (k < key) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}
function findEntry(lv, r, w) {  // the entry of token w in row r, or −1
  let lo = lv.ptr[r], hi = lv.ptr[r + 1] - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, c = lv.cols[mid];
    if (c === w) return mid;
    if (c < w) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}
function known(t, ctx) {  // the length of the longest suffix the model knows (−1: none; null: left out)
  if (t.kind === "mix") {
    let best = t.merged ? Math.min(1, ctx.length) : -1;
    for (const p of t.parts) {
      const k = known(p.model, ctx.slice(ctx.length - Math.min(ctx.length, p.model.order - 1)));
      if (k === null) return null;
      best = Math.max(best, k);
    }
    return best;
  }
  for (let j = Math.min(ctx.length, t.order - 1); j >= 0; j--) {
    const lv = t.levels[j];
    if (!lv) continue;
    if (lv.dropped) return null;
    if (findRow(lv, ctx, j) >= 0) return j;
  }
  return -1;
}
function takingPart(t, ctx) {  // a mix's parts, each with the context it reads; null where one is left out
  const ell = t.merged ? known(t, ctx) : 0;
  if (ell === null) return null;
  const out = [];
  for (const p of t.parts) {
    const n = Math.min(ctx.length, p.model.order - 1), reads = ctx.slice(ctx.length - n);
    let lacks = false;
    for (let d = 0; p.own && d < Math.min(n, ell); d++) if (!p.own[reads[n - 1 - d]]) lacks = true;
    if (!lacks) out.push({ p, reads });
  }
  return out;
}
function logaddexp(a, b) { if (a === -Infinity) return b; if (b === -Infinity) return a; const m = Math.max(a, b); return m + Math.log1p(Math.exp(-Math.abs(a - b))); }
function readLogP(t, ctx, w) {  // log P(w | ctx), or null
  if (t.kind === "mix") {
    const parts = takingPart(t, ctx);
    if (!parts) return null;
    let acc = -Infinity, mass = 0;
    for (const { p, reads } of parts) {
      const x = readLogP(p.model, reads, w);
      if (x === null) return null;
      acc = logaddexp(acc, x + (p.weight > 0 ? Math.log(p.weight) : -Infinity));
      mass += p.weight;
    }
    return mass > 0 ? acc - Math.log(mass) : -Math.log(V);  // only parts of weight 0: uniform, as bigram
  }
  let acc = 0;
  for (let j = Math.min(ctx.length, t.order - 1); j >= 0; j--) {
    const lv = t.levels[j], r = knownRow(lv, ctx, j);
    if (r === LEFT_OUT) return null;
    if (r < 0) continue;
    const e = findEntry(lv, r, w);
    if (e >= 0) return acc + lv.logp[e];
    acc += lv.backoff[r];
  }
  return acc - Math.log(V);
}
function readRow(t, ctx) {  // log P(· | ctx) as V numbers, or null
  if (t.kind === "mix") {
    const parts = takingPart(t, ctx);
    if (!parts) return null;
    const acc = new Float64Array(V).fill(-Infinity);
    let mass = 0;
    for (const { p, reads } of parts) {
      const row = readRow(p.model, reads);
      if (!row) return null;
      const lw = p.weight > 0 ? Math.log(p.weight) : -Infinity;
      for (let k = 0; k < V; k++) acc[k] = logaddexp(acc[k], row[k] + lw);
      mass += p.weight;
    }
    const lm = Math.log(mass);
    for (let k = 0; k < V; k++) acc[k] = mass > 0 ? acc[k] - lm : -Math.log(V);
    return acc;
  }
  const out = new Float64Array(V).fill(-Math.log(V));
  for (let j = 0; j <= Math.min(ctx.length, t.order - 1); j++) {  // shorter first: longer ones overwrite
    const lv = t.levels[j], r = knownRow(lv, ctx, j);
    if (r === LEFT_OUT) return null;
    if (r < 0) continue;
    const b = lv.backoff[r];
    for (let k = 0; k < V; k++) out[k] += b;
    for (let e = lv.ptr[r]; e < lv.ptr[r + 1]; e++) out[lv.cols[e]] = lv.logp[e];
  }
  return out;
}
const rowCache = new Map();
function logp(model, ctx) {  // the row of log P a model gives a context (cached), or null
  const key = model + "|" + keyOf(ctx);
  if (!rowCache.has(key)) {
    if (rowCache.size > 4000) rowCache.clear();
    rowCache.set(key, readRow(TABLES[model], ctx));
  }
  return rowCache.get(key);
}
function describeRow(t, ctx) {  // what a model's row lists here and what it leaves to the shorter context
  if (t.kind === "mix") return `a mix of ${t.parts.length} parts: P = ` + t.parts.map((p, i) => `${p.weight.toPrecision(3)} × P${i + 1}`).join(" + ");
  const j = known(t, ctx);
  if (j === null) return "its row is left out of this page";
  if (j < 0) return `it knows no suffix of this context: every token gets 1/${V.toLocaleString("en")}`;
  const lv = t.levels[j], r = findRow(lv, ctx, j), listed = lv.ptr[r + 1] - lv.ptr[r];
  const which = j ? `the row of “${ctxText(ctx.slice(ctx.length - j))}”` : "its row for no context";
  const lists = listed === V ? `all ${V.toLocaleString("en")} next tokens` : `${listed.toLocaleString("en")} next token${listed === 1 ? "" : "s"}`;
  const at = `it reads ${which}, which lists ${lists}`;
  if (listed === V) return at;  // no other token: its backoff weight is never used
  if (lv.backoff[r] === -Infinity) return at + ", the only ones it gives any probability";
  const shorter = known(t, ctx.slice(ctx.length - j + 1));
  const below = j === 0 || shorter === null || shorter < 0 ? `1/${V.toLocaleString("en")} (uniform)`
    : shorter === 0 ? "P(·) of its row for no context" : `P(· | “${ctxText(ctx.slice(ctx.length - shorter))}”)`;
  return `${at}; every other token: β = ${g4(Math.exp(lv.backoff[r]))} × ${below}`;
}
function tokensText(ids) { return ids.map(d => D.tokens[d]).join(""); }  // as the model reads them
function label(id) { return D.labels[id]; }  // a token as the page shows it: ␣ for the space, \uXXXX for the invisible
function labelsText(ids) { return ids.map(label).join(""); }  // a context or an n-gram, every token visible
function ctxText(ctx) { return labelsText(ctx); }
function sum(xs) { return xs.reduce((a, b) => a + b, 0); }
function modelColour(m) { return m === "count" ? COLOUR.count : COLOUR.neural; }  // mix and arpa as neural
function fixed(x, d) { x = typeof x === "string" ? Number(x) : x; return x === -Infinity ? "-inf" : x === Infinity ? "inf" : Number.isNaN(x) ? "nan" : x.toFixed(d); }
function pad(s, w) { return s.length >= w ? s : " ".repeat(w - s.length) + s; }
function g4(x) {  // Python's {:.4g}
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return fixed(x, 0);
  const e = Math.floor(Math.log10(Math.abs(x)));
  if (e < -4 || e >= 4) {
    let [m, ex] = x.toExponential(3).split("e");
    m = m.replace(/\.?0+$/, "");
    const n = Number(ex);
    return m + "e" + (n < 0 ? "-" : "+") + String(Math.abs(n)).padStart(2, "0");
  }
  return String(Number(x.toPrecision(4)));
}
function shade(t) {  // --heat-low → --heat-high, and the ink that reads on it
  const a = COLOUR.heatLow, b = COLOUR.heatHigh;
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * Math.max(0, Math.min(1, t))));
  const lum = (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
  return { fill: `rgb(${c})`, ink: lum < 0.5 ? COLOUR.inkOnDark : COLOUR.ink };
}

function niceScale(lo, hi, most, least = 0) {  // an axis from lo to hi in round steps (1, 2 or 5 × 10^k, ≥ least)
  const span = hi - lo || Math.abs(hi) || 1;
  let mag = 10 ** Math.floor(Math.log10(span / most));
  for (;; mag *= 10) for (const m of [1, 2, 5]) {
    const step = m * mag;
    if (step < least) continue;
    const a = Math.floor(lo / step + 1e-9), b = Math.ceil(hi / step - 1e-9);
    if (b - a + 1 > most) continue;
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const ticks = [];
    for (let i = a; i <= Math.max(b, a + 1); i++) ticks.push({ value: i * step, text: (i * step).toFixed(digits) });
    return { lo: ticks[0].value, hi: ticks[ticks.length - 1].value, ticks };
  }
}

// --- header ---------------------------------------------------------------------------------
function alphabet() {  // Vocab.describe's words, every character visible (the space as ␣)
  const chars = D.labels.slice(1), all = chars.join("");
  const shown = chars.length > 40 ? chars.slice(0, 20).join("") + "…" + chars.slice(-10).join("") : all;
  return `${V.toLocaleString("en")} tokens: the boundary “${D.tokens[0]}” and ${chars.length.toLocaleString("en")} characters, ${shown}`;
}
document.getElementById("run").textContent =
  `Run ${D.run}: ${D.gram}s over ${alphabet()}; ` +
  MODELS.map(m => `${NAMES[m]}: ${D.model_notes[m] || ""}`).join("; ") + "." +
  D.unread.map(u => " " + u).join("");  // what the page could not read, in words
document.getElementById("ctx-len").textContent =
  ORDER === 1 ? "empty context: a unigram model reads none" : ORDER === 2 ? "character before" : `${ORDER - 1} characters before`;

// --- 1. the table ---------------------------------------------------------------------------
let heatMode = "N";
function heatModes() {
  const box = document.getElementById("heat-modes");
  const modes = [["N", "counts N"], ...MODELS.map(m => ["P:" + m, "P, " + NAMES[m]])];
  for (const [key, label] of modes) {
    const l = el("label", {}, null, box);
    const r = el("input", { type: "radio", name: "heat-mode", value: key }, null, l);
    if (key === heatMode) r.checked = true;
    r.addEventListener("change", () => { heatMode = key; drawHeat(); });
    l.appendChild(document.createTextNode(" " + label));
  }
}
function drawHeat() {
  const svg = clear(document.getElementById("heat"));
  const rows = D.heat.rows, cols = D.heat.cols;
  const labelW = Math.max(1, ORDER - 1) * 9 + 8;
  const cw = Math.max(38, 8 * (ORDER + 1) + 10), ch = 34, top = 4;
  const W = labelW + cols.length * cw, H = top + rows.length * ch;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", Math.min(W, 1050));
  let max = 0;
  const cell = (r, c) => {
    if (heatMode === "N") return countOf(r, c);
    const l = logp(heatMode.slice(2), r);
    return l ? Math.exp(l[c]) : NaN;  // NaN: a row this page left out
  };
  for (const r of rows) for (const c of cols) if (!Number.isNaN(cell(r, c))) max = Math.max(max, cell(r, c));
  rows.forEach((r, i) => {
    const g = el("g", { class: "heat-row", "data-row": keyOf(r), style: "cursor:pointer" }, null, svg);
    g.addEventListener("click", () => showRow(r));
    cols.forEach((c, j) => {
      const v = cell(r, c);
      const { fill, ink } = shade(max ? v / max : 0);
      const x = labelW + j * cw, y = top + i * ch;
      const rect = el("rect", { x, y, width: cw - 1, height: ch - 1, fill, "data-col": c }, null, g);
      const label = ctxText(r) + D.labels[c];
      el("text", { x: x + cw / 2, y: y + 13, "text-anchor": "middle", "font-size": 11, fill: ink }, label, g);
      const valueText = heatMode === "N" ? String(v) : Number.isNaN(v) ? "–" : v.toFixed(3).replace(/^0/, "");
      el("text", { x: x + cw / 2, y: y + 27, "text-anchor": "middle", "font-size": 10, fill: ink }, valueText, g);
      rect.addEventListener("mouseover", () => hover(r, c));
    });
    el("text", { x: labelW - 6, y: top + i * ch + 21, "text-anchor": "end", "font-size": 12 }, ctxText(r) || "∅", g);
  });
  const note = document.getElementById("heat-note");
  if (!rows.length) {  // an imported model: no counts came with it
    note.textContent = "This run holds no training counts (its model was imported, not trained here): there is no table of N to show. Part 2 shows the row of the context every name starts in.";
    return;
  }
  const someRows = rows.length < D.seen_contexts || D.C !== String(rows.length);
  const tokens = cols.length < V ? `the ${cols.length} most frequent of ${V.toLocaleString("en")} next tokens`
    : `all ${V.toLocaleString("en")} next tokens`;
  note.textContent = (someRows
    ? `Showing the ${rows.length} most frequent of ${D.seen_contexts.toLocaleString("en")} contexts seen ` +
      `(${D.C} possible) × ${tokens}.`
    : D.C === "1" ? `The one context (the empty one) × ${tokens}.` : `All ${D.C} contexts × ${tokens}.`) + ` The boundary is shown as “${D.tokens[0]}”` + spaceWords() + ".";
}
function spaceWords() {  // how the page shows the tokens a label cannot show as themselves
  const hex = t => "U+" + t.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  const shown = D.labels.map((l, i) => [l, D.tokens[i]]).filter(([l, t], i) => i > 0 && l !== t);
  const words = shown.slice(0, 6).map(([l, t]) => t === " " ? "the space as “␣”" : `${hex(t)} as “${l}”`);
  return words.length ? ", " + words.join(", ") + (shown.length > 6 ? ", …" : "") : "";
}
function hover(r, c) {
  const parts = [`${ctxText(r)}${D.labels[c]}: N = ${countOf(r, c)}`];
  for (const m of MODELS) {
    const l = logp(m, r);
    parts.push(l ? `${NAMES[m]}: P = ${Math.exp(l[c]).toFixed(6)}, log P = ${fixed(l[c], 4)}` : `${NAMES[m]}: left out of this page`);
  }
  document.getElementById("info").textContent = parts.join("   ");
}

// --- 2. one row -----------------------------------------------------------------------------
(function rowLead() {
  const lead = clear(document.getElementById("row-lead"));
  lead.appendChild(document.createTextNode("One row of the table: P(next | context) as bars, "));
  MODELS.forEach((m, i) => {
    if (i) lead.appendChild(document.createTextNode(" beside "));
    el("span", { class: m }, NAMES[m], lead);
  });
  lead.appendChild(document.createTextNode(". Click a row of the table above to see another."));
})();
function rowProbs(model, ctx) { const l = logp(model, ctx); return l && Array.from(l, Math.exp); }
function showRow(row) {
  const svg = clear(document.getElementById("bars"));
  const at = heatIndex.get(keyOf(row)), total = at === undefined ? 0 : D.heat.totals[at];
  const ps = Object.fromEntries(MODELS.map(m => [m, rowProbs(m, row)]));
  const drawn = MODELS.filter(m => ps[m]);  // a row this page left out has no bars: the stats say so
  const first = drawn.length ? ps[drawn[0]] : new Array(V).fill(0);
  let ids = [...Array(V).keys()].sort((a, b) => first[b] - first[a] || a - b);
  const barIds = ids.slice(0, 40);
  document.getElementById("row-head").textContent =
    `context "${ctxText(row) || "∅"}"` + (D.heat.rows.length ? `: ${total.toLocaleString("en")} occurrences in the training names` : "") +
    (barIds.length < V ? `; the ${barIds.length} most probable of ${V.toLocaleString("en")} next tokens` : "");
  const bw = 22, H = 240, top = 10, base = H - 44, left = 70;
  const W = left + 6 + barIds.length * (bw + 6);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", Math.min(W, 1050));
  const max = Math.max(0, ...drawn.map(m => Math.max(...barIds.map(i => ps[m][i])))) || 1;
  const axis = niceScale(0, max, 6), y = p => base - (base - top) * p / axis.hi;
  el("line", { x1: left, x2: W, y1: base, y2: base, stroke: COLOUR.axis }, null, svg);
  el("line", { x1: left, x2: left, y1: top, y2: base, stroke: COLOUR.axis }, null, svg);
  for (const t of axis.ticks) {
    el("line", { x1: left - 4, x2: left, y1: y(t.value), y2: y(t.value), stroke: COLOUR.axis }, null, svg);
    el("text", { x: left - 7, y: y(t.value) + 4, "text-anchor": "end", "font-size": 11, class: "tick" }, t.text, svg);
  }
  el("text", { x: 14, y: (top + base) / 2, "text-anchor": "middle", "font-size": 12, class: "axis-label",
    transform: `rotate(-90 14 ${(top + base) / 2})` }, "P(next | context)", svg);
  el("text", { x: left + 6, y: H - 4, "font-size": 12, class: "axis-label" }, "next character, most probable first (“" + D.tokens[0] + "”: the name ends)", svg);
  barIds.forEach((id, k) => {
    const x = left + 6 + k * (bw + 6);
    drawn.forEach((m, j) => {
      const p = ps[m][id], h = base - y(p);
      const w = bw / drawn.length;
      const r = el("rect", { x: x + j * w, y: base - h, width: w - 1, height: h,
        fill: modelColour(m), class: "bar", "data-model": m, "data-token": id,
        "data-p": String(p) }, null, svg);
      el("title", {}, `${label(id)}: ${NAMES[m]} P = ${p.toFixed(6)}`, r);
    });
    el("text", { x: x + bw / 2, y: base + 16, "text-anchor": "middle", "font-size": 13, class: "bar-label" }, label(id), svg);
  });
  const stats = clear(document.getElementById("row-stats"));
  const H_ = p => -p.reduce((a, x) => a + (x > 0 ? x * Math.log(x) : 0), 0);
  for (const m of MODELS) {
    const line = el("div", { "data-model": m }, null, stats);
    el("span", { class: m }, NAMES[m], line);
    line.appendChild(document.createTextNode(ps[m] ? `: the entropy of its row is ${H_(ps[m]).toFixed(4)} nats; ${describeRow(TABLES[m], row)}.`
      : ": its row is left out of this page."));
  }
  if (ps.count && ps.neural) {
    const kl = ps.count.reduce((a, p, i) => a + (p > 0 ? p * (Math.log(p) - Math.log(ps.neural[i])) : 0), 0);
    el("div", {}, `KL(count ‖ neural) of this row: ${kl.toFixed(6)} nats.`, stats);
  }
}

// --- 3. one name ----------------------------------------------------------------------------
function rule(text) {
  if (D.rule.normalize && D.rule.normalize !== "none") text = text.normalize(D.rule.normalize);
  if (D.rule.lowercase) text = text.toLowerCase();
  const cps = [...text];
  let a = 0, b = cps.length;
  while (a < b && SPACES.has(cps[a].codePointAt(0))) a++;
  while (b > a && SPACES.has(cps[b - 1].codePointAt(0))) b--;
  return cps.slice(a, b).join("");
}
function pyRepr(s) { return s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/'/g, "\\'")}'`; }
function scoreName(model, raw) {
  const name = rule(raw);
  const ids = [];
  for (const ch of name) {
    const id = charId.get(ch);
    if (id === undefined) {
      const u = ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      return { name, error: `character ${pyRepr(ch)} (U+${u}) in ${pyRepr(name)} is not in the model's vocabulary (${D.describe})` };
    }
    ids.push(id);
  }
  const padded = [...startCtx(), ...ids, 0];
  const steps = [];
  let ll = 0, p64 = 1, p32 = 1;
  for (let i = 0; i + ORDER - 1 < padded.length; i++) {
    const ctx = padded.slice(i, i + ORDER - 1), next = padded[i + ORDER - 1];
    const x = readLogP(TABLES[model], ctx, next);
    if (x === null) return { name, steps, missing: ctxText(ctx) };
    const p = Math.exp(x);
    ll += x; p64 *= p; p32 = Math.fround(p32 * Math.fround(p));
    steps.push({ gram: labelsText([...ctx, next]), p, logp: x, ll, p64, p32 });
  }
  const nll = -ll / steps.length;
  return { name, steps, ll, nll, perplexity: Math.exp(nll), bits: nll / Math.LN2 };
}
let example = "", exampleModel = "";  // the name the box starts with when "emma" is not one the model can read
function exampleName() {
  const box = document.getElementById("name-input");
  if (!scoreName(MODELS[0], box.value).error) return;
  const model = exampleModel = MODELS.includes(D.default_model) ? D.default_model : MODELS[0];
  // of 100 drawn names of 3 to 12 characters, the one the model finds likeliest per prediction: made of common characters
  let best = null;
  for (const d of sampleNames(model, 100, 1)) {
    const n = [...d.name].length, s = d.missing || n < 3 || n > 12 ? null : scoreName(model, d.name);
    if (s && s.nll !== undefined && (!best || s.nll < best.nll)) best = s;
  }
  if (best) box.value = example = best.name;
}
function showName() {
  const raw = document.getElementById("name-input").value;
  const box = clear(document.getElementById("name-tables"));
  const err = document.getElementById("name-error");
  err.textContent = "";
  const ruleNote = [];
  if (D.rule.normalize !== "none") ruleNote.push(`Unicode ${D.rule.normalize}`);
  if (D.rule.lowercase) ruleNote.push("lowercased");
  ruleNote.push("stripped");
  const said = clear(document.getElementById("name-rule"));
  said.appendChild(document.createTextNode(`Read by the run's text rule (${ruleNote.join(", ")}), as `));
  el("code", {}, "bigram score", said);
  said.appendChild(document.createTextNode(` reads it: "${rule(raw)}".`));
  if (example && raw === example) said.appendChild(document.createTextNode(
    ` The box starts with a name the ${NAMES[exampleModel]} drew (of 100 drawn, the one it finds likeliest): ` +
    "“emma” has characters outside its vocabulary."));
  for (const m of MODELS) {
    const s = scoreName(m, raw);
    if (s.error) { err.textContent = s.error; return; }
    const wrap = el("div", {}, null, box);
    el("h3", { class: m }, NAMES[m], wrap);
    const t = el("table", { class: "steps", "data-model": m }, null, wrap);
    const head = el("tr", {}, null, t);
    for (const h of [D.gram, "P", "log P", "running product (float64)", "(float32)", "running log-likelihood"]) el("th", { class: "num" }, h, head);
    let under64 = false, under32 = false;
    for (const st of s.steps) {
      const tr = el("tr", {}, null, t);
      el("td", { class: "mono" }, st.gram, tr);
      el("td", { class: "num" }, st.p.toFixed(6), tr);
      el("td", { class: "num" }, fixed(st.logp, 4), tr);
      const c64 = el("td", { class: "num" }, g4(st.p64), tr);
      const c32 = el("td", { class: "num" }, g4(st.p32), tr);
      if (st.p64 === 0 && st.logp > -Infinity && !under64) { c64.className = "num under"; c64.textContent += " ← underflow"; under64 = true; }
      if (st.p32 === 0 && st.logp > -Infinity && !under32) { c32.className = "num under"; c32.textContent += " ← underflow"; under32 = true; }
      el("td", { class: "num" }, fixed(st.ll, 4), tr);
    }
    const tot = el("div", { class: "totals mono", "data-model": m }, null, wrap);
    if (s.missing !== undefined) {
      el("div", { class: "error" }, `The row of the context "${s.missing}" is left out of this page (the note ` +
        "at the top says which rows and why): bigram score has it.", tot);
      continue;
    }
    const n = s.steps.length;
    const unit = ORDER === 2 ? "bigram" : "prediction";  // as bigram score words it (metrics.format_score)
    el("div", { class: "nll" },
      `likelihood = ${g4(Math.exp(s.ll))}   log-likelihood = ${fixed(s.ll, 4)}   NLL = ${fixed(s.nll, 4)} nats/${unit} over ${n} ${unit}s`, tot);
    el("div", { class: "perplexity" }, `perplexity = exp(NLL) = ${fixed(s.perplexity, 4)}`, tot);
    el("div", { class: "bits" }, `bits per character = NLL / ln 2 = ${fixed(s.bits, 4)}`, tot);
  }
}

// --- 4. sampling ----------------------------------------------------------------------------
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shaped(model, ctx, temperature, topk, first = false) {  // P^(1/T) renormalized, cut to its top k
  const l = logp(model, ctx);
  if (!l) return null;
  const s = Array.from(l, x => x / temperature), m = s.reduce((a, b) => Math.max(a, b), -Infinity);
  let p = s.map(x => Math.exp(x - m));
  if (first) p[0] = 0;  // a name has a character: the first draw is conditioned on not ending (exact)
  if (topk > 0 && topk < V) {
    const kth = [...p].sort((a, b) => b - a)[topk - 1];
    p = p.map(x => (x >= kth ? x : 0));
  }
  const z = sum(p);
  return p.map(x => x / z);
}
function pick(p, u) { let c = 0; for (let i = 0; i < p.length; i++) { c += p[i]; if (u < c && p[i] > 0) return i; } return p.findLastIndex(x => x > 0); }
function stripped(name) { const cps = [...name]; return !cps.length || !(SPACES.has(cps[0].codePointAt(0)) || SPACES.has(cps[cps.length - 1].codePointAt(0))); }
function sampleNames(model, n, seed, temperature = 1, topk = 0, maxLen = 200) {
  return drawNames(mulberry32(seed), model, n, temperature, topk, maxLen);
}
function drawNames(rng, model, n, temperature = 1, topk = 0, maxLen = 200) {
  // as bigram sample draws: names of at least one character, and a walk that begins or ends
  // with white space (no name the text rule can make) is drawn again
  const out = [];
  while (out.length < n) {
    let ctx = startCtx(), name = "", drawn = null;
    for (let j = 0; j <= maxLen && drawn === null; j++) {
      const p = shaped(model, ctx, temperature, topk, j === 0);
      if (!p) { drawn = { name, missing: true }; break; }
      const id = pick(p, rng());
      if (id === 0) { drawn = { name }; break; }
      name += D.tokens[id];
      ctx = ORDER > 1 ? [...ctx.slice(1), id] : ctx;
    }
    if (drawn === null) drawn = { name, cut: true };
    if (drawn.missing || stripped(drawn.name)) out.push(drawn);
  }
  return out;
}
const walk = { rng: null, ctx: [], name: "", done: false, timer: null };
const draws = { rng: null, done: 0 };  // "draw 20 more names" goes on along the seed's one stream of names
function sParams() {
  return { model: document.getElementById("s-model").value, seed: Number(document.getElementById("s-seed").value) >>> 0,
           T: Math.max(0.05, Number(document.getElementById("s-temp").value) || 1),
           k: Math.max(0, Math.floor(Number(document.getElementById("s-topk").value) || 0)) };
}
function sWords() {  // the settings a list of names was drawn with
  const { model, seed, T, k } = sParams();
  return `${NAMES[model]}, seed ${seed}, temperature ${T}` + (k > 0 && k < V ? `, top-k ${k}` : "");
}
function stopPlay() { if (walk.timer) { clearInterval(walk.timer); walk.timer = null; } }
function newName() { walk.ctx = startCtx(); walk.name = ""; walk.done = false; }
function resetWalk() {
  stopPlay();
  walk.rng = mulberry32(sParams().seed);
  newName();
  clear(document.getElementById("walked"));
  document.getElementById("walked-box").hidden = true;
  document.getElementById("walk-error").textContent = "";
  document.getElementById("walk").textContent = `${D.tokens[0]} (the boundary: every name starts here; press step)`;
  const { model, T, k } = sParams();
  drawCdf(shaped(model, walk.ctx, T, k, true), null, null);
}
function resetAll() { resetWalk(); draws.rng = null; drawMany(); }  // new settings: both start again
function stepWalk() {
  const { model, T, k } = sParams();
  if (walk.done) newName();
  const p = shaped(model, walk.ctx, T, k, walk.name === "");
  if (!p) {
    document.getElementById("walk-error").textContent = `The walk reached the context "${ctxText(walk.ctx)}", whose row this page left out (the note at the top says why): bigram sample goes on from there.`;
    walk.done = true; stopPlay(); return;
  }
  const u = walk.rng(), id = pick(p, u);
  drawCdf(p, u, id);
  if (id === 0) {
    walk.done = true;
    el("li", {}, walk.name, document.getElementById("walked"));
    document.getElementById("walked-head").textContent = `Names walked step by step (${sWords()}):`;
    document.getElementById("walked-box").hidden = false;
    const note = stripped(walk.name) ? "" : "; it ends in white space, which no name does, so bigram sample would draw again";
    document.getElementById("walk").textContent = `${D.tokens[0]}${walk.name}${D.tokens[0]}  (ended at the boundary: "${walk.name}"${note})`;
    stopPlay();
    return;
  }
  walk.name += D.tokens[id];
  walk.ctx = ORDER > 1 ? [...walk.ctx.slice(1), id] : walk.ctx;
  document.getElementById("walk").textContent = `${D.tokens[0]}${walk.name}   (drew "${label(id)}": u = ${u.toFixed(4)})`;
}
function drawCdf(p, u, chosen) {
  const svg = clear(document.getElementById("cdf"));
  const W = 1000, H = 70;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", W);
  if (!p) return;
  let x = 0;
  p.forEach((q, i) => {
    if (q <= 0) return;
    const w = q * W, hit = i === chosen;
    el("rect", { x, y: 10, width: Math.max(w - 0.5, 0.5), height: 36, fill: hit ? COLOUR.drawn : (i % 2 ? COLOUR.segmentAlt : COLOUR.segment),
      class: "segment", "data-token": i, "data-p": String(q) }, null, svg);
    if (w > 14) el("text", { x: x + w / 2, y: 33, "text-anchor": "middle", "font-size": 13, fill: hit ? COLOUR.inkOnDark : COLOUR.ink }, label(i), svg);
    x += w;
  });
  if (u === null) return;
  el("line", { x1: u * W, x2: u * W, y1: 4, y2: 54, stroke: COLOUR.ink, "stroke-width": 2 }, null, svg);
  el("text", { x: Math.min(Math.max(u * W, 30), W - 30), y: 66, "text-anchor": "middle", "font-size": 12 }, `u = ${u.toFixed(3)}`, svg);
}
function drawMany() {  // the next 20 names of the seed's stream: a click never shows the same names again
  const { model, seed, T, k } = sParams();
  if (!draws.rng) { draws.rng = mulberry32(seed); draws.done = 0; }
  const names = drawNames(draws.rng, model, 20, T, k);
  const ol = clear(document.getElementById("drawn"));
  ol.setAttribute("start", draws.done + 1);
  for (const s of names) el("li", {}, s.missing ? s.name + " … (a context whose row this page left out)" : s.name, ol);
  document.getElementById("drawn-head").textContent = `Names ${draws.done + 1}–${draws.done + names.length} drawn at once (${sWords()}):`;
  draws.done += names.length;
}

// --- 5. training ----------------------------------------------------------------------------
const SPLITS = ["train", "val", "test"];
const SPLIT_WORDS = { train: "training names", val: "validation names", test: "test names" };
const DASH = { train: "", val: "6 3", test: "2 3" };
const DASH_WORDS = { train: "solid", val: "dashed", test: "dotted" };
const OPTIMIZER_WORDS = { sgd: "gradient descent (SGD)", adam: "Adam, a form of gradient descent",
  lbfgs: "L-BFGS, a quasi-Newton method", newton: "Newton's method" };
function drawCurves() {
  const svg = clear(document.getElementById("curves"));
  const note = clear(document.getElementById("curves-note"));
  const curves = D.curves;
  const tags = Object.keys(curves).filter(t => SPLITS.includes(t.split("/")[0]) && curves[t].length)
    .sort((a, b) => SPLITS.indexOf(a.split("/")[0]) - SPLITS.indexOf(b.split("/")[0]) || (a < b ? -1 : 1));
  const neural = tags.filter(t => t.endsWith("/nll") && curves[t].length > 1);
  const none = MODELS.includes("neural") ? "No training curve (two or more logged steps) was found in this run's TensorBoard event files."
    : MODELS.includes("count") ? "This run trained no neural model, so there is no curve: the count model is computed once, from the counts."
    : MODELS.includes("mix") ? "This run mixes other runs' models: it trained nothing, so there is no curve."
    : "This run was imported from an ARPA file: it trained nothing here, so there is no curve.";
  for (const id of ["train-lead", "curves-controls"]) document.getElementById(id).hidden = !neural.length;  // no chart: no words on it
  if (!neural.length) { svg.setAttribute("height", 0); note.textContent = none; return; }
  const W = 900, H = 330, L = 70, R = 170, T = 15, B = 46;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", W);
  const all = tags.map(t => curves[t]).flat();
  const lastStep = Math.max(...all.map(p => p[0]), 1);
  const xs = niceScale(0, lastStep, 11, 1);
  const zoom = document.getElementById("curves-zoom").checked;  // the y range of where the lines end, not where they start
  const ends = tags.map(t => curves[t][curves[t].length - 1][1]);
  const [lo, hi] = zoom ? [Math.min(...ends), Math.max(...ends)] : [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
  const pad = zoom ? Math.max((hi - lo) * 0.6, 0.002) : 0;
  const ys = niceScale(lo - pad, hi + pad, 8);
  const sx = s => L + (W - L - R) * (s - xs.lo) / (xs.hi - xs.lo), sy = v => T + (H - T - B) * (ys.hi - v) / (ys.hi - ys.lo);
  el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: COLOUR.axis }, null, svg);
  el("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: COLOUR.axis }, null, svg);
  const clip = el("clipPath", { id: "plot-area" }, null, el("defs", {}, null, svg));
  el("rect", { x: L, y: T, width: W - R - L, height: H - B - T }, null, clip);  // zoomed in, a line leaves the chart here
  for (const t of ys.ticks) {
    el("line", { x1: L - 4, x2: L, y1: sy(t.value), y2: sy(t.value), stroke: COLOUR.axis }, null, svg);
    el("text", { x: L - 7, y: sy(t.value) + 4, "text-anchor": "end", "font-size": 11, class: "tick y" }, t.text, svg);
  }
  for (const t of xs.ticks) {
    el("line", { x1: sx(t.value), x2: sx(t.value), y1: H - B, y2: H - B + 4, stroke: COLOUR.axis }, null, svg);
    el("text", { x: sx(t.value), y: H - B + 17, "text-anchor": "middle", "font-size": 11, class: "tick x" }, t.text, svg);
  }
  el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 12, class: "axis-label" }, "training step", svg);
  const mid = (T + H - B) / 2;
  el("text", { x: 16, y: mid, "text-anchor": "middle", "font-size": 12, class: "axis-label", transform: `rotate(-90 16 ${mid})` },
    `NLL (nats per ${D.gram})`, svg);
  let ly = T + 10;
  for (const tag of tags) {
    const split = tag.split("/")[0], isCount = tag.endsWith("_count_model");
    const pts = curves[tag];
    const colour = isCount ? COLOUR.count : COLOUR.neural;
    const attrs = { fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": DASH[split], class: "curve", "data-tag": tag,
      "clip-path": "url(#plot-area)" };
    if (isCount) el("line", { ...attrs, x1: sx(0), x2: sx(lastStep), y1: sy(pts[pts.length - 1][1]), y2: sy(pts[pts.length - 1][1]) }, null, svg);
    else el("polyline", { ...attrs, points: pts.map(p => `${sx(p[0])},${sy(p[1])}`).join(" ") }, null, svg);
    el("line", { x1: W - R + 10, x2: W - R + 34, y1: ly, y2: ly, stroke: colour, "stroke-width": 2, "stroke-dasharray": DASH[split], class: "legend-line" }, null, svg);
    el("text", { x: W - R + 40, y: ly + 4, "font-size": 12, class: "legend" }, `${isCount ? "count" : "neural"} model, ${split}`, svg);
    ly += 18;
  }
  curvesCaption(note, tags);
}
document.getElementById("curves-zoom").addEventListener("change", drawCurves);
function curvesCaption(note, tags) {  // what is drawn, in words, and what the lines mean for this run's models
  const splits = SPLITS.filter(sp => tags.some(t => t.startsWith(sp + "/")));
  const opt = OPTIMIZER_WORDS[D.optimizer] || "its optimizer";
  const hasCount = tags.some(t => t.endsWith("_count_model"));
  const line = text => el("p", {}, text, note);
  line(splits.length === 1
    ? `Every line is the NLL on the ${SPLIT_WORDS[splits[0]]}` + (splits[0] === "train" && !D.metrics.count?.val && !D.metrics.neural?.val ? " (this run held out no names)." : ".")
    : splits.map(sp => `${DASH_WORDS[sp]}: ${SPLIT_WORDS[sp]}`).join(", ").replace(/^./, c => c.toUpperCase()) + ".");
  const flat = !hasCount ? "" : D.model_notes.count
    ? ` Blue, flat: the count model's (${D.model_notes.count}), computed once from the counts, not trained step by step.`
    : " Blue, flat: a count model's, computed once from the same counts (by this run's smoothing) as a reference while the neural model trained; this run keeps no count model.";
  line(`Orange: the neural model's NLL after each step of ${opt}.` + flat);
  const M = D.metrics;
  for (const sp of splits) {
    const n = M.neural?.[sp], c = M.count?.[sp];
    if (!n || !c) continue;
    // the difference of the numbers as printed (6 decimals, as the table below): what a reader can check
    const [ns, cs] = [fixed(n.nll, 6), fixed(c.nll, 6)], d = Math.round((Number(ns) - Number(cs)) * 1e6);
    line(`On the ${SPLIT_WORDS[sp]} the neural model ends at ${ns}, ` +
      (d === 0 ? "level with" : `${fixed(Math.abs(d) / 1e6, 6)} ${d > 0 ? "above" : "below"}`) + ` the count model's ${cs}.`);
  }
  const e = M.neural?.train?.entropy ?? M.count?.train?.entropy;
  if (e !== undefined && splits.includes("train")) line(`The count line is not a floor. The floor on the training names is their entropy, ` +
    `${fixed(e, 4)}: the NLL of their own frequencies, the least any ${D.gram} model can score on them. Counting with no ` +
    `smoothing scores exactly that, and the neural model comes as close as its L2 term and its steps let it.`);
}
function drawEval() {
  const t = clear(document.getElementById("eval"));
  const head = el("tr", {}, null, t);
  for (const h of ["model", "split", D.gram + "s", "NLL", "perplexity", "bits/char", "entropy", "KL(data‖model)"]) el("th", { class: "num" }, h, head);
  for (const m of Object.keys(D.metrics)) for (const [split, x] of Object.entries(D.metrics[m])) {
    const tr = el("tr", { "data-model": m, "data-split": split }, null, t);
    el("td", { class: m }, m, tr); el("td", {}, split, tr);
    el("td", { class: "num" }, x.bigrams.toLocaleString("en"), tr);
    for (const [k, d] of [["nll", 6], ["perplexity", 4], ["bits_per_char", 4], ["entropy", 6], ["kl", 6]]) el("td", { class: "num" }, fixed(x[k], d), tr);
  }
  t.hidden = !Object.keys(D.metrics).length;
  const ul = clear(document.getElementById("chain"));
  if (t.hidden) el("li", {}, MODELS.includes("arpa") ? "This run has no evaluation of its own: its model was imported with no names. bigram eval RUN --data FILE measures it on names you give."
    : "This run's metrics.json could not be read (the line at the top says why): bigram eval RUN measures it again.", ul);
  const u = Math.log(V);
  for (const line of [
    `NLL is the negative log-likelihood per ${D.gram}: the mean of −log P(next | context) over every ${D.gram} of the split. It is the cross-entropy between the data's next characters (one-hot targets) and the model.`,
    "Perplexity = exp(NLL): the model is as unsure as a uniform choice among that many characters. Bits per character = NLL / ln 2.",
    `Entropy is the data's cross-entropy with itself: the NLL of its own frequencies, the least any ${D.gram} model can reach on that split.`,
    "KL(data ‖ model) = cross-entropy − entropy ≥ 0: what the model loses against the data's own frequencies (smoothing pays a little on training names to stay finite on new ones).",
    `A uniform model over the ${V.toLocaleString("en")} tokens scores −log(1/V) = log V = ${u.toFixed(4)} nats (perplexity ${V.toLocaleString("en")}): every NLL on this page is measured against that.`,
  ]) el("li", {}, line, ul);
}

// --- start ----------------------------------------------------------------------------------
heatModes();
drawHeat();
showRow(D.heat.rows[0] ?? startCtx());
document.getElementById("carried").textContent = D.left_out.length ? D.left_out.join(" ")
  : "This page carries every model whole: every walk completes and every name scores, as in bigram sample and bigram score.";
document.getElementById("name-input").addEventListener("input", showName);
exampleName();
showName();
const sm = document.getElementById("s-model");
for (const m of MODELS) el("option", { value: m }, NAMES[m], sm);
sm.value = MODELS.includes(D.default_model) ? D.default_model : MODELS[0];  // the better on val
for (const id of ["s-model", "s-seed", "s-temp", "s-topk"]) document.getElementById(id).addEventListener("change", resetAll);
document.getElementById("s-step").addEventListener("click", stepWalk);
document.getElementById("s-reset").addEventListener("click", resetWalk);
document.getElementById("s-many").addEventListener("click", drawMany);
document.getElementById("s-play").addEventListener("click", () => {
  if (walk.timer) return;
  walk.timer = setInterval(stepWalk, 350);
});
resetWalk();
drawMany();
drawCurves();
drawEval();
window.bigramExplore = { scoreName, sampleNames, rowProbs, rule, ready: true };
document.body.setAttribute("data-ready", "1");
performance.mark("bigram-ready");  // every part drawn: what scripts/bench.py times
