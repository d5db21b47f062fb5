// openr2v web console: plain ES module, no build step. Everything goes through the public API:
// DashScope endpoints (/api/v1/...) and openr2v extensions (/api/v1/openr2v/..., /tasks/{id}/events).

const $ = (sel) => document.querySelector(sel);
const KEY_STORAGE = "openr2v.apiKey";
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"]);

const state = {
  key: localStorage.getItem(KEY_STORAGE) || "",
  models: [],
  model: null,
  refs: [], // {id, name, kind, url, status, seconds, preview, voice: {name, url, status}}
  current: null, // the task shown in "Current task"
  stream: null, // AbortController of the live event stream
  previewTimer: null,
  voiceFor: null, // ref id waiting for a voice file
};
let nextId = 1;

// -- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || `HTTP${status}`;
    this.requestId = body.request_id || "";
  }
}

async function api(path, { method = "GET", json, headers = {} } = {}) {
  const h = { Authorization: `Bearer ${state.key}`, Accept: "application/json", ...headers };
  let body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const r = await fetch(`/api/v1${path}`, { method, headers: h, body });
  let data = {};
  try {
    data = await r.json();
  } catch {
    /* an empty or non-JSON body */
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function describe(err) {
  return err instanceof ApiError ? `${err.code}: ${err.message}` : String(err.message || err);
}

// DashScope's temporary uploads: a signed policy, then an OSS-style form POST, then oss://<key>.
async function upload(file) {
  const policy = (await api(`/uploads?action=getPolicy&model=${encodeURIComponent(state.model.name)}`)).data;
  const key = `${policy.upload_dir}/${file.name}`;
  const form = new FormData();
  form.append("OSSAccessKeyId", policy.oss_access_key_id);
  form.append("Signature", policy.signature);
  form.append("policy", policy.policy);
  form.append("key", key);
  form.append("x-oss-object-acl", policy.x_oss_object_acl);
  form.append("x-oss-forbid-overwrite", policy.x_oss_forbid_overwrite);
  form.append("success_action_status", "200");
  form.append("x-oss-content-type", file.type || "application/octet-stream");
  form.append("file", file, file.name);
  const r = await fetch(policy.upload_host, { method: "POST", body: form });
  if (r.status !== 200) throw new Error(`uploading ${file.name} failed (HTTP ${r.status})`);
  return `oss://${key}`;
}

// -- API key ---------------------------------------------------------------------------------

async function saveKey(event) {
  event?.preventDefault();
  state.key = $("#api-key").value.trim();
  localStorage.setItem(KEY_STORAGE, state.key);
  await start();
}

async function start() {
  $("#api-key").value = state.key;
  const status = $("#key-status");
  if (!state.key) {
    status.textContent = "Enter your API key to start.";
    setComposeEnabled(false);
    return;
  }
  try {
    const out = (await api("/openr2v/models")).output;
    state.models = out.models;
    status.textContent = `Key saved · region ${out.region}`;
    status.className = "muted ok";
    setComposeEnabled(true);
    renderModels();
    await refreshTasks();
  } catch (err) {
    status.textContent = describe(err);
    status.className = "error";
    setComposeEnabled(false);
  }
}

function setComposeEnabled(on) {
  $("#compose").classList.toggle("disabled", !on);
  $("#submit").disabled = !on;
}

// -- model and parameters -------------------------------------------------------------------

function renderModels() {
  const select = $("#model");
  const previous = state.model?.name || select.value;
  select.replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
  const preferred = state.models.find((m) => m.name === previous) || state.models.find((m) => m.name === "wan2.6-r2v-flash");
  select.value = (preferred || state.models[0]).name;
  onModelChange();
}

function fillSelect(select, values, chosen) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(String(v), String(v))));
  select.value = values.map(String).includes(keep) ? keep : String(chosen);
}

function onModelChange() {
  const m = state.models.find((x) => x.name === $("#model").value);
  state.model = m;
  const bySize = m.sizes.length > 0;
  $("#size-field").hidden = !bySize;
  $("#resolution-field").hidden = bySize;
  $("#ratio-field").hidden = bySize;
  if (bySize) fillSelect($("#size"), m.sizes, m.default_size);
  else {
    fillSelect($("#resolution"), m.resolutions, m.default_resolution);
    fillSelect($("#ratio"), m.ratios, m.default_ratio);
  }
  fillSelect($("#duration"), m.durations, m.default_duration);
  const audio = $("#audio");
  audio.disabled = !m.audio_optional;
  if (!m.audio_optional) audio.checked = true;
  $("#model-hint").textContent = m.input_style === "media"
    ? `Name references as Image N / Video N (a lone one: "reference image"). Up to ${m.max_total} references, one first frame, voices.`
    : `Name references character1…character${m.max_total} in the order you add them.`;
  renderRefs();
}

// -- references -------------------------------------------------------------------------------

function labels() {
  // The prompt's names for the references, as the server counts them (domain/preview.py).
  if (!state.model || state.model.input_style !== "media") return state.refs.map((_, i) => `character${i + 1}`);
  const counts = { image: 0, video: 0 };
  const out = state.refs.map((r) => {
    if (r.kind === "first_frame") return "";
    counts[r.kind] += 1;
    return `${r.kind === "video" ? "Video" : "Image"} ${counts[r.kind]}`;
  });
  const named = out.map((l, i) => (l ? i : -1)).filter((i) => i >= 0);
  if (named.length === 1) out[named[0]] = `reference ${state.refs[named[0]].kind}`;
  return out;
}

function kindOf(type, name) {
  if (type.startsWith("image/") || /\.(jpe?g|png|bmp|webp)$/i.test(name)) return "image";
  if (type.startsWith("video/") || /\.(mp4|mov)$/i.test(name)) return "video";
  return null;
}

function videoSeconds(url) {
  return new Promise((resolve) => {
    const v = document.createElement("video");
    v.preload = "metadata";
    v.muted = true;
    v.onloadedmetadata = () => resolve(Number.isFinite(v.duration) ? v.duration : null);
    v.onerror = () => resolve(null);
    v.src = url;
  });
}

async function addFiles(files) {
  showError("");
  // All the files take their places (and labels) at once, in order; then they upload side by side.
  const added = [];
  for (const file of files) {
    const kind = kindOf(file.type || "", file.name);
    if (!kind) {
      showError(`${file.name}: use an image (JPEG, PNG, BMP, WEBP) or a video (MP4, MOV).`);
      continue;
    }
    const ref = { id: nextId++, name: file.name, kind, url: null, status: "uploading", seconds: null,
      preview: URL.createObjectURL(file), voice: null };
    state.refs.push(ref);
    added.push([ref, file]);
  }
  renderRefs();
  await Promise.all(added.map(async ([ref, file]) => {
    if (ref.kind === "video") ref.seconds = await videoSeconds(ref.preview);
    try {
      ref.url = await upload(file);
      ref.status = "ready";
    } catch (err) {
      ref.status = "error";
      showError(describe(err));
    }
    renderRefs();
  }));
}

function addUrl(event) {
  event.preventDefault();
  const input = $("#ref-url");
  const url = input.value.trim();
  if (!url) return;
  const path = url.split("?")[0];
  const kind = kindOf("", path) || "image";
  state.refs.push({ id: nextId++, name: path.split("/").pop() || url, kind, url, status: "ready",
    seconds: null, preview: kind === "image" ? url : null, voice: null });
  input.value = "";
  renderRefs();
}

async function addVoice(file) {
  const ref = state.refs.find((r) => r.id === state.voiceFor);
  state.voiceFor = null;
  if (!ref || !file) return;
  ref.voice = { name: file.name, url: null, status: "uploading" };
  renderRefs();
  try {
    ref.voice.url = await upload(file);
    ref.voice.status = "ready";
  } catch (err) {
    ref.voice.status = "error";
    showError(describe(err));
  }
  renderRefs();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") Object.assign(node.style, v); // CSSOM: allowed by the page's CSP, unlike style=""
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function renderRefs() {
  const names = labels();
  const media = state.model?.input_style === "media";
  const list = $("#refs");
  list.replaceChildren(...state.refs.map((r, i) => {
    const thumb = r.kind === "video"
      ? el("video", { src: r.preview, muted: true, class: "thumb" })
      : el("img", { src: r.preview || "", alt: "", class: "thumb" });
    const kindSelect = media && r.kind !== "video"
      ? el("select", { class: "kind", "aria-label": `role of ${r.name}`, onchange: (e) => { r.kind = e.target.value; renderRefs(); } },
        new Option("reference image", "image", false, r.kind === "image"),
        new Option("first frame", "first_frame", false, r.kind === "first_frame"))
      : null;
    const voice = media && r.kind !== "first_frame"
      ? el("button", { type: "button", class: "link", onclick: () => { state.voiceFor = r.id; $("#voice-input").click(); } },
        r.voice ? `voice: ${r.voice.name} (${r.voice.status})` : "+ voice")
      : null;
    return el("li", { class: `ref ${r.status}`, "data-label": names[i] },
      thumb,
      el("div", { class: "ref-body" },
        el("div", { class: "ref-name" }, names[i] ? el("span", { class: "label" }, names[i]) : el("span", { class: "label ff" }, "first frame"), " ", r.name),
        el("div", { class: "ref-meta muted small" },
          r.kind, r.seconds ? ` · ${r.seconds.toFixed(1)} s` : "", " · ",
          el("span", { class: "ref-status" }, r.status === "ready" ? "uploaded" : r.status)),
        el("div", { class: "ref-actions" }, kindSelect, voice)),
      el("button", { type: "button", class: "remove", "aria-label": `remove ${r.name}`, onclick: () => { state.refs.splice(i, 1); renderRefs(); } }, "×"));
  }));
  renderChips(names);
  schedulePreview();
}

function renderChips(names) {
  $("#chips").replaceChildren(...names.filter(Boolean).map((name) =>
    el("button", { type: "button", class: "chip", "data-insert": name, onclick: () => insertAtCursor(name) }, name)));
}

function insertAtCursor(text) {
  const area = $("#prompt");
  const { selectionStart: a, selectionEnd: b, value } = area;
  const before = value.slice(0, a);
  const after = value.slice(b);
  const pad = before && !/\s$/.test(before) ? " " : "";
  const tail = after && !/^[\s.,:;!?]/.test(after) ? " " : "";
  area.value = before + pad + text + tail + after;
  const caret = (before + pad + text).length;
  area.focus();
  area.setSelectionRange(caret, caret);
  schedulePreview();
}

// -- the request ------------------------------------------------------------------------------

function requestBody({ preview = false } = {}) {
  const m = state.model;
  const input = { prompt: $("#prompt").value };
  const negative = $("#negative").value.trim();
  if (negative) input.negative_prompt = negative;
  // While a file uploads, the preview still counts it (by a placeholder URL with its extension).
  const urlOf = (r) => r.url || `https://pending.invalid/${encodeURIComponent(r.name)}`;
  if (m.input_style === "media") {
    input.media = state.refs.map((r) => {
      const item = { type: r.kind === "first_frame" ? "first_frame" : `reference_${r.kind}`, url: urlOf(r) };
      if (r.voice?.url) item.reference_voice = r.voice.url;
      return item;
    });
  } else {
    input.reference_urls = state.refs.map(urlOf);
  }
  const parameters = { duration: Number($("#duration").value), shot_type: $("#shot-type").value,
    watermark: $("#watermark").checked };
  if (m.sizes.length) parameters.size = $("#size").value;
  else {
    parameters.resolution = $("#resolution").value;
    parameters.ratio = $("#ratio").value;
  }
  if (m.audio_optional) parameters.audio = $("#audio").checked;
  const seed = $("#seed").value.trim();
  if (seed !== "") parameters.seed = Number(seed);
  const body = { model: m.name, input, parameters };
  if (preview) body.reference_seconds = state.refs.map((r) => r.seconds);
  return body;
}

function schedulePreview() {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(preview, 250);
}

async function preview() {
  if (!state.model || !state.key) return;
  const body = requestBody({ preview: true });
  try {
    const [plan, cost] = await Promise.all([
      api("/openr2v/plan", { method: "POST", json: body }),
      api("/openr2v/estimate", { method: "POST", json: body }),
    ]);
    renderTimeline(plan.output.plan);
    renderEstimate(cost.output);
  } catch (err) {
    $("#estimate").textContent = describe(err);
  }
}

function renderTimeline(plan) {
  const box = $("#timeline");
  if (!$("#prompt").value.trim()) {
    box.replaceChildren(el("p", { class: "muted small" }, "Write a prompt to see its shots."));
    return;
  }
  const total = plan.duration || 1;
  const bar = el("div", { class: "track" }, ...plan.shots.map((s) => {
    const lines = s.lines.map((ln) => el("div", { class: "line" },
      `${ln.speaker || "voice"}${ln.addressee ? ` to ${ln.addressee}` : ""}: “${ln.text}”`));
    return el("div", { class: `shot ${s.framing.replace(/[^a-z]/g, "")}`, style: { flex: `${Math.max(0.01, s.end - s.start)} 1 0` },
      title: s.text },
      el("div", { class: "shot-head" }, `Shot ${s.index}`, el("span", { class: "muted" }, ` ${fmt(s.start)}–${fmt(s.end)} s`)),
      el("div", { class: "shot-framing" }, s.framing + (s.camera ? ` · ${s.camera}` : "")),
      el("div", { class: "shot-who" }, s.on_screen.join(", ") || "scene"),
      ...lines);
  }));
  const ticks = el("div", { class: "ticks muted small" }, el("span", {}, "0 s"), el("span", {}, `${fmt(total)} s`));
  box.replaceChildren(el("div", { class: "plan-mode muted small" }, `${plan.mode} plan · ${plan.shots.length} shot(s)`), bar, ticks);
}

function fmt(t) {
  return Number(t).toFixed(2).replace(/\.?0+$/, "");
}

function renderEstimate(e) {
  const bound = e.exact ? "" : " (at most: a video's length is not known yet)";
  $("#estimate").replaceChildren(
    el("strong", {}, `Estimated cost $${e.cost_usd.toFixed(3)}`),
    ` · ${fmt(e.billed_seconds)} billed s = ${fmt(e.input_video_duration)} s input video + ${e.output_video_duration} s output, `
      + `at $${e.unit_price_usd}/s (${e.size}, ${e.audio ? "with audio" : "silent"})${bound}`);
}

function showError(text) {
  $("#form-error").textContent = text;
}

async function submit() {
  showError("");
  if (!state.refs.length) return showError("Add at least one reference image or video.");
  if (state.refs.some((r) => r.status !== "ready" || (r.voice && r.voice.status !== "ready"))) {
    return showError("Wait for the uploads to finish (or remove the failed ones).");
  }
  const body = requestBody();
  const headers = { "X-DashScope-Async": "enable" };
  if (JSON.stringify(body.input).includes("oss://")) headers["X-DashScope-OssResourceResolve"] = "enable";
  $("#submit").disabled = true;
  try {
    const out = (await api("/services/aigc/video-generation/video-synthesis", { method: "POST", json: body, headers })).output;
    showTask({ output: out });
    follow(out.task_id);
    refreshTasks();
  } catch (err) {
    showError(describe(err));
  } finally {
    $("#submit").disabled = false;
  }
}

// -- live progress ----------------------------------------------------------------------------

function parseTime(s) {
  return s ? Date.parse(s.replace(" ", "T") + "Z") : null;
}

function showTask(body) {
  const out = body.output;
  const same = state.current?.task_id === out.task_id;
  state.current = { ...(same ? state.current : {}), ...out };
  const t = state.current;
  $("#current-empty").hidden = true;
  const box = $("#current");
  box.hidden = false;
  box.dataset.status = t.task_status;
  box.dataset.taskId = t.task_id;
  const badge = $("#current-status");
  badge.textContent = t.task_status;
  badge.className = `badge ${t.task_status.toLowerCase()}`;
  $("#current-id").textContent = t.task_id;
  const progress = t.task_status === "SUCCEEDED" ? 100 : (t.progress ?? 0);
  $("#current-progress").value = progress;
  $("#current-message").textContent = t.code ? `${t.code}: ${t.message || ""}` : "";
  const player = $("#player");
  const link = $("#download");
  if (t.task_status === "SUCCEEDED" && t.video_url) {
    if (player.getAttribute("src") !== t.video_url) player.src = t.video_url;
    player.hidden = false;
    link.href = t.video_url;
    link.download = `openr2v-${t.task_id}.mp4`;
    link.hidden = false;
  } else if (!same || t.task_status !== "SUCCEEDED") {
    player.hidden = true;
    player.removeAttribute("src");
    link.hidden = true;
  }
  tickElapsed();
  if (TERMINAL.has(t.task_status)) refreshTasks();
}

function tickElapsed() {
  const t = state.current;
  if (!t) return;
  const start = parseTime(t.submit_time) || Date.now();
  const end = parseTime(t.end_time) || Date.now();
  $("#elapsed").textContent = `${((end - start) / 1000).toFixed(1)} s`;
}
setInterval(() => state.current && !TERMINAL.has(state.current.task_status) && tickElapsed(), 500);

async function follow(taskId) {
  state.stream?.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  try {
    // EventSource cannot send an Authorization header, so the stream is read with fetch.
    const r = await fetch(`/api/v1/tasks/${taskId}/events`, {
      headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" }, signal: ctrl.signal });
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (data && state.stream === ctrl) showTask(JSON.parse(data));
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  // The stream ended early (or is not offered): poll until the task is final.
  while (state.stream === ctrl && state.current?.task_id === taskId && !TERMINAL.has(state.current.task_status)) {
    await new Promise((ok) => setTimeout(ok, 1500));
    try {
      showTask(await api(`/tasks/${taskId}`));
    } catch (err) {
      $("#current-message").textContent = describe(err);
    }
  }
}

// -- my tasks ---------------------------------------------------------------------------------

async function refreshTasks() {
  if (!state.key) return;
  try {
    const body = await api("/tasks?page_size=20");
    const models = Object.fromEntries((body.data || []).map((d) => [d.task_id, d.model_name]));
    const rows = (body.tasks || []).map((t) => {
      const actions = [el("button", { type: "button", class: "link", onclick: () => openTask(t.task_id) }, "show")];
      if (t.task_status === "PENDING") {
        actions.push(el("button", { type: "button", class: "link danger", "data-cancel": t.task_id, onclick: () => cancelTask(t.task_id) }, "cancel"));
      }
      return el("tr", { "data-task-id": t.task_id, "data-status": t.task_status },
        el("td", {}, el("code", { title: t.task_id }, t.task_id.slice(0, 8))),
        el("td", {}, models[t.task_id] || ""),
        el("td", {}, el("span", { class: `badge ${t.task_status.toLowerCase()}` }, t.task_status)),
        el("td", { class: "small" }, (t.submit_time || "").slice(0, 19)),
        el("td", {}, ...actions));
    });
    $("#tasks tbody").replaceChildren(...rows);
  } catch (err) {
    $("#key-status").textContent = describe(err);
  }
}

async function openTask(taskId) {
  try {
    const body = await api(`/tasks/${taskId}`);
    showTask(body);
    if (!TERMINAL.has(body.output.task_status)) follow(taskId);
  } catch (err) {
    showError(describe(err));
  }
}

async function cancelTask(taskId) {
  try {
    await api(`/tasks/${taskId}/cancel`, { method: "POST" });
  } catch (err) {
    showError(describe(err));
  }
  await refreshTasks();
  if (state.current?.task_id === taskId) openTask(taskId);
}

// -- wiring -----------------------------------------------------------------------------------

function wire() {
  $("#key-form").addEventListener("submit", saveKey);
  $("#model").addEventListener("change", onModelChange);
  const zone = $("#dropzone");
  const input = $("#file-input");
  $("#browse").addEventListener("click", (e) => { e.stopPropagation(); input.click(); });
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    addFiles([...e.dataTransfer.files]);
  });
  $("#voice-input").addEventListener("change", (e) => { addVoice(e.target.files[0]); e.target.value = ""; });
  $("#url-form").addEventListener("submit", addUrl);
  for (const id of ["#prompt", "#negative", "#seed"]) $(id).addEventListener("input", schedulePreview);
  for (const id of ["#size", "#resolution", "#ratio", "#duration", "#shot-type", "#audio", "#watermark"]) {
    $(id).addEventListener("change", schedulePreview);
  }
  $("#submit").addEventListener("click", submit);
  $("#refresh").addEventListener("click", refreshTasks);
}

wire();
start();
