// tconv explorer. Every size, window, frame and formula comes from the JSON API (/api/layer), which
// answers with tconv's own functions; this file only reads the controls, draws what it is sent, and
// keeps the state in the URL. No framework, no build step, nothing fetched from elsewhere.
"use strict";

const KEYS = ["framework", "input", "kernel", "stride", "padding", "dilation", "output_padding", "output_size", "view", "numbers"];
const SVGNS = "http://www.w3.org/2000/svg";
// Okabe-Ito fills per cell kind, as the matplotlib pictures use (tconv/drawing/_mpl.py)
const FILL = {0: "#FFFFFF", 1: "#56B4E9", 2: "#FFFFFF", 3: "#E6E6E6", 4: "#FFFFFF", 5: "#E69F00",
              6: "#F4F4F4", 7: "#9FD9C6", 8: "#FFFFFF", 9: "#F0E442", 10: "#CFE3F2"};
const BOX = {kept: ["#0072B2", 3, ""], current: ["#D55E00", 2.5, ""], window: ["#000000", 1.5, "5,3"], tap: ["#E69F00", 2, ""]};
const SLIDER_FOR = {kernel: "kernel-range", stride: "stride-range", dilation: "dilation-range"};

const $ = (id) => document.getElementById(id);
let meta = null;
let answer = null;
let frame = 0;
let timer = null;
let pending = 0;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// ---- state <-> controls <-> URL ---------------------------------------------------------
function readControls() {
  const state = {};
  for (const key of KEYS) {
    if (key === "view") {
      const chosen = document.querySelector('input[name="view"]:checked');
      state.view = chosen ? chosen.value : "scatter";
    } else if (key === "numbers") {
      state.numbers = $("numbers").checked ? "1" : "";
    } else {
      state[key] = $(key).value.trim();
    }
  }
  return state;
}

function writeControls(state) {
  for (const key of KEYS) {
    if (key === "view") {
      const radio = document.querySelector(`input[name="view"][value="${CSS.escape(state.view || "scatter")}"]`);
      if (radio) radio.checked = true;
    } else if (key === "numbers") {
      $("numbers").checked = ["1", "true", "on", "yes"].includes(String(state.numbers || "").toLowerCase());
    } else if (state[key] !== undefined) {
      $(key).value = state[key];
    }
  }
  syncSliders();
}

function stateFromUrl() {
  const params = new URLSearchParams(location.search);
  const state = {framework: "pytorch", input: "8x8", kernel: "3", stride: "2", view: "scatter"};
  let any = false;
  for (const key of KEYS) {
    if (params.has(key)) { state[key] = params.get(key); any = true; }
  }
  if (any) for (const key of ["stride", "padding", "dilation", "output_padding", "output_size"]) {
    if (!params.has(key)) state[key] = "";
  }
  return state;
}

function writeUrl(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) if (state[key] !== undefined && state[key] !== "") params.set(key, state[key]);
  history.replaceState(null, "", "/?" + params.toString());
}

// Sliders: they set the text fields; a typed value beyond a slider's range is kept as typed
// (the slider shows its end and a note says so), and tconv accepts or refuses it with its rule.
function sizesOf(text) {
  return text.split(/[x,×]/).map((t) => t.trim()).filter((t) => t !== "");
}

function syncSliders() {
  const notes = [];
  const parts = sizesOf($("input").value);
  const two = parts.length >= 2;
  $(two ? "dims-2" : "dims-1").checked = true;
  $("cols-row").hidden = !two;
  placeSlider($("rows"), parts[0], "input rows", notes);
  if (two) placeSlider($("cols"), parts[1], "input cols", notes);
  for (const [key, id] of Object.entries(SLIDER_FOR)) {
    const first = sizesOf($(key).value)[0];
    placeSlider($(id), first === undefined ? "1" : first, key, notes);
  }
  $("range-note").textContent = notes.join("; ");
}

function placeSlider(slider, text, name, notes) {
  if (text === undefined || !/^\d+$/.test(text)) return;
  const value = Number(text);
  const max = Number(slider.max), min = Number(slider.min);
  slider.value = String(Math.min(Math.max(value, min), max));
  if (value > max) notes.push(`${name} ${value} is beyond the slider's ${max}: kept as typed`);
}

function onSlider(event) {
  const slider = event.target;
  if (slider.id === "rows" || slider.id === "cols") {
    const parts = sizesOf($("input").value);
    const two = $("dims-2").checked;
    const rows = slider.id === "rows" ? slider.value : (parts[0] || slider.value);
    const cols = slider.id === "cols" ? slider.value : (parts[1] || parts[0] || slider.value);
    $("input").value = two ? `${rows}x${cols}` : `${rows}`;
  } else {
    $(slider.dataset.for).value = slider.value;
  }
  changed();
}

function onDims() {
  const parts = sizesOf($("input").value);
  const first = parts[0] || "8";
  $("input").value = $("dims-2").checked ? `${first}x${parts[1] || first}` : first;
  changed();
}

// ---- talking to tconv ------------------------------------------------------------------------
async function fetchAnswer(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) if (state[key] !== undefined && state[key] !== "") params.set(key, state[key]);
  const ticket = ++pending;
  let response, data;
  try {
    response = await fetch("/api/layer?" + params.toString());
    data = await response.json();
  } catch (err) {
    showError("the tconv server did not answer: " + err);
    return;
  }
  if (ticket !== pending) return; // a newer request is on its way
  if (!response.ok) { showError(data.error || `error ${response.status}`); return; }
  showError("");
  answer = data;
  // the last frame is the whole answer; the phase view opens on its first phase, the step that explains it
  const n = answer.drawing ? answer.drawing.frames.length : 0;
  frame = n === 0 ? 0 : answer.drawing.view === "phase" && n > 2 ? 1 : n - 1;
  render();
}

function changed() {
  syncSliders();
  const state = readControls();
  writeUrl(state);
  stop();
  fetchAnswer(state);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
  document.body.classList.toggle("refused", !!message);
}

// ---- drawing what tconv sent ---------------------------------------------------------------------
function heatColor(value, max) {
  if (value === null || value <= 0) return "#FFFFFF";
  const t = max <= 1 ? 0 : Math.min(Math.max((value - 1) / (max - 1), 0), 1);
  const lo = [0xE3, 0xF1, 0xFA], hi = [0x00, 0x5A, 0x8C];
  return "#" + lo.map((v, i) => Math.round(v + (hi[i] - v) * t).toString(16).padStart(2, "0")).join("");
}

function drawPanel(panel, index) {
  const box = el("figure", {class: "panel", "data-testid": `panel-${index}`});
  box.appendChild(el("figcaption", {}, panel.title));
  if (panel.summary) {
    const ul = el("ul", {class: "summary", "data-testid": "summary"});
    for (const line of panel.lines) ul.appendChild(el("li", {}, line));
    box.appendChild(ul);
    return box;
  }
  const cell = Math.max(10, Math.min(30, Math.floor(520 / Math.max(panel.cols, 1))));
  const pad = 18;
  const image = svg("svg", {width: panel.cols * cell + pad, height: panel.rows * cell + pad, class: "cells",
                            role: "img", "aria-label": panel.title});
  const g = svg("g", {transform: `translate(${pad},${pad})`});
  let heatMax = panel.heat_max || 0;
  if (panel.heat && !heatMax) for (const row of panel.heat) for (const v of row) if (v !== null) heatMax = Math.max(heatMax, v);
  for (let r = 0; r < panel.rows; r++) {
    for (let c = 0; c < panel.cols; c++) {
      const kind = panel.kinds[r][c];
      let fill = FILL[kind] || "#FFFFFF";
      if (kind === 10 && panel.heat && panel.heat[r][c] !== null) fill = heatColor(panel.heat[r][c], heatMax);
      const rect = svg("rect", {x: c * cell, y: r * cell, width: cell, height: cell, fill, class: `cell kind-${kind}`,
                                 stroke: kind === 8 ? "#CC79A7" : "#9A9A9A", "stroke-width": 0.6});
      if (kind === 8) rect.setAttribute("fill", "url(#hatch)");
      g.appendChild(rect);
      const label = panel.text ? panel.text[r][c] : "";
      if (label && cell >= 14) {
        const t = svg("text", {x: c * cell + cell / 2, y: r * cell + cell / 2 + 4, "text-anchor": "middle",
                                "font-size": Math.min(12, cell * 1.1 / Math.max(label.length, 1) + 2)});
        t.textContent = label;
        g.appendChild(t);
      }
    }
  }
  for (const b of panel.boxes) {
    const [stroke, width, dash] = BOX[b.style] || BOX.current;
    const inset = b.style === "tap" ? cell * 0.12 : 0;
    g.appendChild(svg("rect", {x: b.c0 * cell + inset, y: b.r0 * cell + inset, width: (b.c1 - b.c0) * cell - 2 * inset,
                               height: (b.r1 - b.r0) * cell - 2 * inset, fill: "none", stroke, "stroke-width": width,
                               "stroke-dasharray": dash, class: `box box-${b.style}`}));
  }
  // index labels along the top and the left: the panel's own coordinates
  const step = panel.cols > 20 ? 5 : 1;
  for (let c = 0; c < panel.cols; c += step) {
    const t = svg("text", {x: pad + c * cell + cell / 2, y: 12, "text-anchor": "middle", class: "index"});
    t.textContent = String(c + panel.origin[1]);
    image.appendChild(t);
  }
  if (!panel.one_d) for (let r = 0; r < panel.rows; r += (panel.rows > 20 ? 5 : 1)) {
    const t = svg("text", {x: 2, y: pad + r * cell + cell / 2 + 4, class: "index"});
    t.textContent = String(r + panel.origin[0]);
    image.appendChild(t);
  }
  const defs = svg("defs");
  const pattern = svg("pattern", {id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)"});
  pattern.appendChild(svg("rect", {width: 6, height: 6, fill: "#FFFFFF"}));
  pattern.appendChild(svg("line", {x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#CC79A7", "stroke-width": 2}));
  defs.appendChild(pattern);
  image.appendChild(defs);
  image.appendChild(g);
  box.appendChild(image);
  for (const note of panel.notes || []) box.appendChild(el("div", {class: "hint"}, note));
  return box;
}

function renderFrame() {
  const picture = $("picture");
  picture.replaceChildren();
  if (!answer || !answer.drawing) {
    $("frame-title").textContent = answer && answer.empty ? "the output is empty: nothing to draw" : "";
    $("frame-no").textContent = "";
    return;
  }
  const frames = answer.drawing.frames;
  const f = frames[frame];
  $("frame-title").textContent = f.title;
  $("frame-no").textContent = `frame ${frame + 1} of ${frames.length}`;
  $("caption").textContent = f.caption.join(" · ");
  f.panels.forEach((p, i) => picture.appendChild(drawPanel(p, i)));
}

function grid(target, rows, cols, label, testid) {
  target.replaceChildren();
  target.style.gridTemplateColumns = `repeat(${cols}, var(--cell))`;
  const cells = [];
  for (let r = 0; r < rows; r++) {
    const row = [];
    for (let c = 0; c < cols; c++) {
      const d = el("div", {class: "gcell", "data-r": r, "data-c": c}, label(r, c));
      if (testid) d.setAttribute("data-testid", testid(r, c));
      target.appendChild(d);
      row.push(d);
    }
    cells.push(row);
  }
  return cells;
}

function renderHover() {
  const area = $("hover-area");
  const cellsInfo = answer && answer.cells;
  area.hidden = !cellsInfo;
  $("cell-formula").textContent = cellsInfo ? "move the pointer over an output cell" :
    "(too large to list every cell: the summary above gives the sizes and the window)";
  if (!cellsInfo) return;
  const xv = cellsInfo.input_values, wv = cellsInfo.kernel_values, cells = cellsInfo.cells;
  const oneD = cellsInfo.one_d;
  const inputs = grid($("hover-input"), xv.length, xv[0].length, (r, c) => xv[r][c]);
  const taps = grid($("hover-kernel"), wv.length, wv[0].length, (r, c) => wv[r][c]);
  const outs = grid($("hover-output"), cells.length, cells[0].length, (r, c) => cells[r][c].value,
                    (r, c) => oneD ? `out-${c}` : `out-${r}-${c}`);
  const clear = () => { for (const g of [inputs, taps, outs]) for (const row of g) for (const d of row) d.classList.remove("lit"); };
  outs.forEach((row, r) => row.forEach((d, c) => {
    d.addEventListener("mouseenter", () => {
      clear();
      const info = cells[r][c];
      d.classList.add("lit");
      for (const [jr, jc] of info.inputs) inputs[jr][jc].classList.add("lit");
      for (const [tr, tc] of info.taps) taps[tr][tc].classList.add("lit");
      $("cell-formula").textContent = info.formula;
    });
  }));
}

function render() {
  $("output-size").textContent = answer.output_size;
  $("full-size").textContent = answer.full_size;
  $("window").textContent = answer.window.map(([a, b]) => `full[${a}:${b}]`).join(" × ");
  $("warnings").textContent = answer.warnings.join(" ");
  $("formula").textContent = answer.formula.join("\n");
  const steps = $("steps");
  steps.replaceChildren();
  for (const s of answer.steps) {
    const li = el("li", {"data-key": s.key});
    li.appendChild(el("strong", {}, s.title));
    for (const line of s.lines) li.appendChild(el("div", {class: "line"}, line));
    steps.appendChild(li);
  }
  const body = $("convert").querySelector("tbody");
  body.replaceChildren();
  for (const row of answer.convert) {
    const tr = el("tr", {"data-framework": row.framework});
    tr.appendChild(el("td", {}, row.title));
    const args = row.error ? row.error : row.call;
    tr.appendChild(el("td", {class: row.error ? "refused" : "args", "data-testid": `convert-${row.framework}`}, args));
    tr.appendChild(el("td", {}, row.error ? "" : row.exact ? "exact" : "+ slice"));
    body.appendChild(tr);
  }
  $("code").textContent = answer.code;
  for (const node of document.querySelectorAll(".fw-title")) node.textContent = answer.title;
  renderFrame();
  renderHover();
}

// ---- the animation ---------------------------------------------------------------------------
function stop() {
  if (timer) clearInterval(timer);
  timer = null;
  $("play").textContent = "play";
}

function play() {
  if (timer) { stop(); return; }
  if (!answer || !answer.drawing) return;
  if (frame >= answer.drawing.frames.length - 1) frame = 0;
  renderFrame();
  $("play").textContent = "pause";
  timer = setInterval(() => {
    if (frame >= answer.drawing.frames.length - 1) { stop(); return; }
    frame += 1;
    renderFrame();
  }, 900);
}

function stepFrame(delta) {
  stop();
  if (!answer || !answer.drawing) return;
  const n = answer.drawing.frames.length;
  frame = delta === "first" ? 0 : delta === "last" ? n - 1 : (frame + 1) % n;
  renderFrame();
}

// ---- framework names on the labels ---------------------------------------------------------------
function labelFramework() {
  const info = meta.frameworks.find((f) => f.name === $("framework").value);
  if (!info) return;
  for (const node of document.querySelectorAll(".fw-title")) node.textContent = info.title;
  for (const key of ["stride", "padding", "dilation", "output_padding", "output_size"]) {
    const name = info.names[key];
    const label = $(`${key}-label`);
    label.textContent = name || `${key} (none in ${info.title})`;
    $(key).disabled = !name;
    if (!name) $(key).value = "";
  }
  const modes = $("padding-modes");
  modes.replaceChildren();
  const values = {pytorch: ["0", "1", "2"], keras: ["same", "valid"], tf_keras: ["same", "valid"],
                  tensorflow: ["SAME", "VALID"], jax: ["SAME", "VALID", "SAME_LOWER"], flax: ["SAME", "VALID", "CIRCULAR"],
                  onnx: ["SAME_UPPER", "SAME_LOWER", "VALID"], tflite: ["SAME", "VALID"], mxnet: ["0", "1"], caffe: ["0", "1"]};
  for (const v of values[info.name] || []) modes.appendChild(el("option", {value: v}));
}

async function start() {
  meta = await (await fetch("/api/meta")).json();
  const select = $("framework");
  for (const f of meta.frameworks) select.appendChild(el("option", {value: f.name}, f.title));
  const views = $("views");
  for (const v of meta.views) {
    const label = el("label");
    const radio = el("input", {type: "radio", name: "view", value: v, "data-testid": `view-${v}`});
    label.appendChild(radio);
    label.appendChild(document.createTextNode(" " + v));
    views.appendChild(label);
    radio.addEventListener("change", changed);
  }
  const seeds = $("seeds");
  seeds.appendChild(el("span", {class: "hint"}, "seed questions: "));
  for (const s of meta.seeds) {
    const b = el("button", {type: "button", "data-testid": `seed-${s.id}`, title: s.question}, `${s.id}: ${s.question}`);
    b.addEventListener("click", () => {
      const state = {stride: "", padding: "", dilation: "", output_padding: "", output_size: "", view: "scatter",
                     numbers: "", ...s.query};
      writeControls(state);
      labelFramework();
      changed();
    });
    seeds.appendChild(b);
  }
  writeControls(stateFromUrl());
  labelFramework();
  select.addEventListener("change", () => { labelFramework(); changed(); });
  $("numbers").addEventListener("change", changed);
  for (const key of KEYS) if (!["view", "framework", "numbers"].includes(key)) {
    $(key).addEventListener("change", changed);
    $(key).addEventListener("keydown", (e) => { if (e.key === "Enter") changed(); });
  }
  for (const id of ["rows", "cols", ...Object.values(SLIDER_FOR)]) $(id).addEventListener("input", onSlider);
  $("dims-1").addEventListener("change", onDims);
  $("dims-2").addEventListener("change", onDims);
  $("play").addEventListener("click", play);
  $("step").addEventListener("click", () => stepFrame(1));
  $("first").addEventListener("click", () => stepFrame("first"));
  $("last").addEventListener("click", () => stepFrame("last"));
  changed();
}

start();
