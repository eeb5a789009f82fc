// ganops explore: the page's widgets. Frames are drawn on the server (api/render); at most one request is
// in flight and changes made meanwhile are sent as one request when it returns, so no backlog builds up.
"use strict";
const $ = (id) => document.getElementById(id);
const latent = { x: 0, y: 0 };
let info = null;
let inFlight = false, dirty = false, lastFrameAt = 0;
// read by the browser test: the settings of the frame on screen, the number of frames shown, and whether
// the frame on screen is the one of the widgets' settings (nothing in flight or waiting)
window.explore = { shown: null, frames: 0, settled: () => !inFlight && !dirty && info !== null &&
                   window.explore.shown === JSON.stringify(settings()) };

function intOrNull(id) { const v = $(id).value.trim(); return v === "" ? null : parseInt(v, 10); }

function settings() {
  const s = { x: latent.x, y: latent.y, noise_mode: $("noise-mode").value, noise_seed: intOrNull("noise-seed") || 0,
              layer: $("layer").value || null, channel: intOrNull("channel") ?? -1 };
  if (info.w_space) {
    Object.assign(s, { psi: parseFloat($("psi").value), cutoff: intOrNull("cutoff") });
    if ($("mix").checked) Object.assign(s, { mix_seed: intOrNull("mix-seed") ?? 0, mix_lo: intOrNull("mix-lo") ?? 0,
                                             mix_hi: intOrNull("mix-hi") ?? 0 });
    if ($("projected").value !== "") s.projected = parseInt($("projected").value, 10);
  }
  if (info.stylegan3) Object.assign(s, { translate_x: parseFloat($("tx").value), translate_y: parseFloat($("ty").value),
                                         rotate: parseFloat($("rotate").value) });
  if (info.c_dim > 0) s.class_idx = intOrNull("class") ?? 0;
  return s;
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (r.status === 204) return null;                       // replaced by a newer request
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

function update() { dirty = true; if (!inFlight) send(); }

async function send() {
  inFlight = true; dirty = false;
  const s = settings(), started = performance.now();
  try {
    const j = await post("api/render", s);
    if (j) {
      $("image").src = "data:image/png;base64," + j.image;
      $("layer-figure").hidden = !j.layer_image;
      if (j.layer_image) {
        $("layer-image").src = "data:image/png;base64," + j.layer_image;
        $("layer-caption").textContent = s.layer + (s.channel < 0 ? " (channel mean)" : ` (channel ${s.channel})`);
      }
      const now = performance.now(), fps = lastFrameAt ? 1000 / (now - lastFrameAt) : 0;
      lastFrameAt = now;
      $("status").textContent = `seed ${j.seed} · render ${j.render_ms.toFixed(1)} ms on the server · ` +
        `round trip ${(now - started).toFixed(0)} ms` + (fps ? ` · ${fps.toFixed(1)} frames/s` : "");
      $("error").textContent = "";
      window.explore.shown = JSON.stringify(s); window.explore.frames += 1;
    }
  } catch (e) { $("error").textContent = e.message; }
  inFlight = false;
  if (dirty) send();
}

function showPosition() {
  $("position").textContent = `x ${latent.x.toFixed(2)}, y ${latent.y.toFixed(2)}`;
  const seed = (Math.round(latent.x) + Math.round(latent.y) * 100) >>> 0;
  if (document.activeElement !== $("seed")) $("seed").value = seed;
  const c = $("pad").getContext("2d"), w = c.canvas.width, h = c.canvas.height;
  c.clearRect(0, 0, w, h);
  c.strokeStyle = "#4a4d55";
  for (let i = 0; i <= 4; i++) { c.beginPath(); c.moveTo(i * w / 4, 0); c.lineTo(i * w / 4, h); c.stroke();
                                 c.beginPath(); c.moveTo(0, i * h / 4); c.lineTo(w, i * h / 4); c.stroke(); }
  const fx = latent.x - Math.floor(latent.x), fy = latent.y - Math.floor(latent.y);
  c.fillStyle = "#6cb6ff"; c.beginPath(); c.arc(w / 4 * (1.5 + fx), h / 4 * (1.5 + fy), 5, 0, 2 * Math.PI); c.fill();
}

function setSeed(seed) { latent.x = Math.max(0, seed); latent.y = 0; showPosition(); update(); }

function outputs() {
  $("psi-value").textContent = parseFloat($("psi").value).toFixed(2);
  $("tx-value").textContent = parseFloat($("tx").value).toFixed(2);
  $("ty-value").textContent = parseFloat($("ty").value).toFixed(2);
  $("rotate-value").textContent = $("rotate").value;
}

function build(state) {
  info = state;
  const cls = state.c_dim ? `${state.c_dim} classes` : "unconditional";
  $("description").textContent = `${state.kind}, ${state.width}x${state.height}, ${cls}, on ${state.device}`;
  $("network").replaceChildren(...state.networks.map((n, i) => {
    const o = new Option(n.label, i, false, i === state.index); o.title = n.path; return o; }));
  for (const id of ["trunc-box", "mix-box"]) $(id).disabled = !state.w_space;
  $("sg3-box").hidden = !state.stylegan3;
  $("class-row").hidden = state.c_dim === 0;
  $("class").max = Math.max(0, state.c_dim - 1);
  for (const id of ["mix-lo", "mix-hi", "cutoff"]) $(id).max = state.num_ws - (id === "cutoff" ? 0 : 1);
  $("mix-hi").value = Math.min(parseInt($("mix-hi").value, 10) || 0, Math.max(0, state.num_ws - 1));
  $("projected-row").hidden = state.projected === 0;
  $("projected").replaceChildren(new Option("the seed", ""),
    ...Array.from({ length: state.projected }, (_, i) => new Option(`projected w #${i}`, i)));
  const layer = $("layer").value;
  $("layer").replaceChildren(new Option("(none)", ""),
    ...state.layers.map((l) => new Option(`${l.name} [${l.shape.join("x")}]`, l.name, false, l.name === layer)));
  update();
}

async function capture() {
  try {
    const j = await post("api/capture", settings());
    const bytes = Uint8Array.from(atob(j.png), (ch) => ch.charCodeAt(0));
    const meta = { settings: j.settings, generate_command: j.generate_command, generate_file: j.generate_file,
                   not_reproducible: j.not_reproducible };
    download(new Blob([bytes], { type: "image/png" }), j.file);
    download(new Blob([JSON.stringify(meta, null, 2)], { type: "application/json" }), j.file.replace(/\.png$/, ".json"));
  } catch (e) { $("error").textContent = e.message; }
}

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function wire() {
  $("seed").addEventListener("change", () => setSeed(parseInt($("seed").value, 10) || 0));
  $("seed-down").addEventListener("click", () => setSeed(Math.round(latent.x) + Math.round(latent.y) * 100 - 1));
  $("seed-up").addEventListener("click", () => setSeed(Math.round(latent.x) + Math.round(latent.y) * 100 + 1));
  for (const id of ["psi", "tx", "ty", "rotate"]) $(id).addEventListener("input", () => { outputs(); update(); });
  for (const id of ["cutoff", "noise-mode", "noise-seed", "mix", "mix-seed", "mix-lo", "mix-hi", "layer", "channel",
                    "class", "projected"]) $(id).addEventListener("change", update);
  $("network").addEventListener("change", async () => {
    try { build(await post("api/network", { index: parseInt($("network").value, 10) })); }
    catch (e) { $("error").textContent = e.message; $("network").value = info.index; }
  });
  $("capture").addEventListener("click", capture);
  let drag = null;
  $("pad").addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; $("pad").setPointerCapture(e.pointerId); });
  $("pad").addEventListener("pointerup", () => { drag = null; });
  $("pad").addEventListener("pointermove", (e) => {
    if (!drag) return;
    latent.x += (e.clientX - drag.x) * 0.01; latent.y += (e.clientY - drag.y) * 0.01;
    latent.x = Math.max(0, latent.x); latent.y = Math.max(0, latent.y);
    drag = { x: e.clientX, y: e.clientY }; showPosition(); update();
  });
  let last = null;
  const tick = (t) => {
    if ($("animate").checked && last !== null) { latent.x += (t - last) / 1000 * 0.25; showPosition(); update(); }
    last = t; requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

async function start() {
  wire(); outputs(); showPosition();
  try { const r = await fetch("api/state"); const j = await r.json(); if (!r.ok) throw new Error(j.error); build(j); }
  catch (e) { $("error").textContent = e.message; }
}
start();
