/**
 * The viewer page: one HTML document with its style and script inline (nothing fetched
 * but this server's /api endpoints). The figure is a PNG drawn by the server; the page
 * maps clicks to image coordinates with the plot frame sent along (X-Plot-Frame) and
 * picks the nearest vector of /api/result.
 *
 * Written as String.raw so that the script's backslashes stay as they are; it must
 * contain no backquote and no dollar-brace.
 */
export const VIEWER_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fluidimage viewer</title>
<link rel="icon" href="data:,">
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #222; background: #f4f4f6; height: 100vh; display: flex; flex-direction: column; }
  header { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; padding: 8px 12px; background: #2b2d42; color: #fff; }
  header h1 { font-size: 16px; margin: 0 8px 0 0; }
  header label { display: flex; gap: 4px; align-items: center; }
  #current { font-family: monospace; min-width: 10em; }
  main { flex: 1; display: grid; grid-template-columns: 210px 1fr 300px; min-height: 0; }
  nav, aside { overflow: auto; padding: 8px 12px; background: #fff; }
  nav { border-right: 1px solid #ddd; }
  aside { border-left: 1px solid #ddd; }
  h2 { font-size: 14px; margin: 8px 0; }
  #files { list-style: none; margin: 0; padding: 0; font-family: monospace; }
  #files button { all: unset; display: block; width: 100%; padding: 2px 6px; cursor: pointer; border-radius: 3px; }
  #files button:hover { background: #e6e8f4; }
  #files li.current button { background: #2b2d42; color: #fff; }
  #view { overflow: auto; padding: 12px; }
  #stage { position: relative; display: inline-block; max-width: 100%; }
  #figure { display: block; max-width: 100%; height: auto; cursor: crosshair; }
  #marker { position: absolute; width: 18px; height: 18px; margin: -9px 0 0 -9px; border: 2px solid #ffe000; border-radius: 50%; box-shadow: 0 0 0 1px #000; pointer-events: none; }
  #status { color: #555; }
  table { border-collapse: collapse; width: 100%; }
  th { text-align: left; font-weight: normal; color: #555; padding: 1px 8px 1px 0; white-space: nowrap; vertical-align: top; }
  td { font-family: monospace; word-break: break-word; }
  progress { width: 100%; }
  .error { color: #b00; }
</style>
</head>
<body>
<header>
  <h1>fluidimage viewer</h1>
  <button id="prev" type="button" title="Previous pair (left arrow)">&#9664; prev</button>
  <span id="current">-</span><span id="position"></span>
  <button id="next" type="button" title="Next pair (right arrow)">next &#9654;</button>
  <label title="Image of the pair (keys a, b)">image <select id="image"><option value="a">A</option><option value="b">B</option><option value="none">none</option></select></label>
  <label title="Key v"><input type="checkbox" id="vectors" checked> vectors</label>
  <label>background <select id="background"><option value="none">none</option><option value="vorticity">vorticity</option><option value="divergence">divergence</option><option value="magnitude">magnitude</option><option value="uncertainty">uncertainty</option></select></label>
</header>
<main>
  <nav><h2>Results <span id="count"></span></h2><ul id="files"></ul></nav>
  <section id="view">
    <div id="stage"><img id="figure" alt="figure of the selected result"><div id="marker" hidden></div></div>
    <p id="status"></p>
  </section>
  <aside>
    <h2>Vector (last pass)</h2>
    <p id="hint">Click a vector to see its values.</p>
    <table id="details" hidden><tbody>
      <tr><th>index</th><td id="d-index"></td></tr>
      <tr><th>grid column, row</th><td id="d-grid"></td></tr>
      <tr><th>x (px)</th><td id="d-x"></td></tr>
      <tr><th>y (px, down)</th><td id="d-y"></td></tr>
      <tr><th>dx (px)</th><td id="d-dx"></td></tr>
      <tr><th>dy (px)</th><td id="d-dy"></td></tr>
      <tr><th>|d| (px)</th><td id="d-mag"></td></tr>
      <tr><th>correlation peak</th><td id="d-correl"></td></tr>
      <tr><th>uncertainty x, y (px, 1 sigma)</th><td id="d-sigma"></td></tr>
      <tr><th>error code</th><td id="d-code"></td></tr>
      <tr><th>error message</th><td id="d-message"></td></tr>
    </tbody></table>
    <h2>Job</h2>
    <div id="job">-</div>
  </aside>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const figure = $('figure');
const state = { files: [], index: -1, result: null, errors: new Map(), frame: null, selected: -1, seq: 0, controller: null, url: null, imageFound: true, imageNote: null };
const POLL_MS = 3000;

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
const query = (params) => new URLSearchParams(params).toString();
/** Values come as the shortest decimals of the stored float32 (null: NaN). */
const fmt = (v) => (v === null || v === undefined ? 'NaN' : String(v));

function updateStatus(error) {
  const s = $('status');
  s.className = error ? 'error' : '';
  if (error) { s.textContent = error; return; }
  const r = state.result;
  if (state.files.length === 0) { s.textContent = 'No result file in this directory yet.'; return; }
  if (!r) { s.textContent = ''; return; }
  const rejected = r.dx.filter((v) => v === null).length;
  s.textContent = r.file + ': ' + r.names.join(' + ') + '; pass ' + r.pass + ' (/piv' + r.pass + '; passes numbered 0 to ' + (r.nb_passes - 1) + '), ' +
    r.x.length + ' vectors, ' + rejected + ' rejected, ' + r.errors.index.length + ' with an error' +
    (state.imageFound || $('image').value === 'none' ? '' : '; ' + (state.imageNote || 'image not found, drawn without it'));
}

async function loadFiles() {
  const { files } = await getJson('/api/files');
  if (files.join('\n') !== state.files.join('\n')) {
    const current = state.files[state.index];
    state.files = files;
    $('files').replaceChildren(...files.map((name, i) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = name;
      b.addEventListener('click', () => show(i));
      li.append(b);
      return li;
    }));
    $('count').textContent = '(' + files.length + ')';
    state.index = current === undefined ? -1 : files.indexOf(current);
    markCurrent();
  }
  if (state.index < 0 && files.length > 0) {
    // The hash keeps the file shown across reloads.
    const wanted = files.indexOf(decodeURIComponent(location.hash.slice(1)));
    show(wanted >= 0 ? wanted : 0);
  } else if (files.length === 0) {
    updateStatus();
  }
}

function markCurrent() {
  const items = $('files').children;
  for (let i = 0; i < items.length; i++) {
    const on = i === state.index;
    items[i].classList.toggle('current', on);
    if (on) { items[i].setAttribute('aria-current', 'true'); items[i].scrollIntoView({ block: 'nearest' }); }
    else items[i].removeAttribute('aria-current');
  }
  $('prev').disabled = state.index <= 0;
  $('next').disabled = state.index < 0 || state.index >= state.files.length - 1;
}

function show(i) {
  if (i < 0 || i >= state.files.length) return;
  const file = state.files[i];
  state.index = i;
  state.selected = -1;
  state.result = null;
  $('current').textContent = file;
  $('position').textContent = '(' + (i + 1) + '/' + state.files.length + ')';
  history.replaceState(null, '', '#' + encodeURIComponent(file));
  markCurrent();
  showDetails();
  placeMarker();
  loadResult(file);
  drawFigure();
}

async function loadResult(file) {
  try {
    const r = await getJson('/api/result?' + query({ file }));
    if (file !== state.files[state.index]) return;
    state.result = r;
    state.errors = new Map(r.errors.index.map((k, j) => [k, { code: r.errors.code[j], message: r.errors.message[j] }]));
    updateStatus();
  } catch (e) {
    updateStatus(file + ': ' + e.message);
  }
}

async function drawFigure() {
  const file = state.files[state.index];
  if (file === undefined) return;
  const params = { file, background: $('background').value, image: $('image').value, vectors: $('vectors').checked ? '1' : '0' };
  // Only the latest request matters (arrow key held down): cancel the previous one.
  if (state.controller) state.controller.abort();
  const controller = state.controller = new AbortController();
  const seq = ++state.seq;
  try {
    const r = await fetch('/api/figure?' + query(params), { cache: 'no-store', signal: controller.signal });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    const frame = JSON.parse(r.headers.get('X-Plot-Frame'));
    const imageFound = r.headers.get('X-Image-Found') === '1';
    const imageNote = r.headers.get('X-Image-Note');
    const blob = await r.blob();
    if (seq !== state.seq) return;
    const url = URL.createObjectURL(blob);
    figure.onload = () => {
      if (state.url) URL.revokeObjectURL(state.url);
      state.url = url;
      state.frame = frame;
      state.imageFound = imageFound;
      state.imageNote = imageNote;
      // What is shown, for scripts and tests.
      Object.assign(figure.dataset, params, { frame: JSON.stringify(frame) });
      placeMarker();
      updateStatus();
    };
    figure.src = url;
  } catch (e) {
    if (e.name !== 'AbortError') updateStatus(file + ': figure: ' + e.message);
  }
}

/** Figure pixel coordinates of image point (x, y) (the renderer's figX/figY). */
const toFigure = (f, x, y) => [f.left + (x + 0.5) * f.zx - 0.5, f.top + (y + 0.5) * f.zy - 0.5];

figure.addEventListener('click', (ev) => {
  const r = state.result, f = state.frame;
  if (!r || !f || !figure.naturalWidth || figure.dataset.file !== r.file) return;
  const rect = figure.getBoundingClientRect();
  const k = figure.naturalWidth / rect.width; // figure pixels per CSS pixel
  const X = (ev.clientX - rect.left) * k, Y = (ev.clientY - rect.top) * k;
  const x = (X - f.left + 0.5) / f.zx - 0.5, y = (Y - f.top + 0.5) / f.zy - 0.5;
  let best = -1, bestD = Infinity;
  for (let i = 0; i < r.x.length; i++) {
    if (r.x[i] === null || r.y[i] === null) continue;
    const d = (r.x[i] - x) ** 2 + (r.y[i] - y) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  // Near a vector: within most of a grid step, or 10 CSS pixels on a coarse figure.
  select(Math.sqrt(bestD) <= Math.max(0.75 * r.step, (10 * k) / f.zx) ? best : -1);
});

function select(i) {
  state.selected = i;
  showDetails();
  placeMarker();
}

function showDetails() {
  const r = state.result, i = state.selected;
  const none = i < 0 || !r;
  $('details').hidden = none;
  $('hint').hidden = !none;
  if (none) return;
  const set = (id, text) => { $(id).textContent = text; };
  const nx = r.shape_grid[1];
  const dx = r.dx[i], dy = r.dy[i];
  const err = state.errors.get(i);
  set('d-index', String(i));
  set('d-grid', nx > 0 ? (i % nx) + ', ' + Math.floor(i / nx) : '-');
  set('d-x', fmt(r.x[i]));
  set('d-y', fmt(r.y[i]));
  set('d-dx', fmt(dx));
  set('d-dy', fmt(dy));
  set('d-mag', dx === null || dy === null ? 'NaN' : Math.hypot(dx, dy).toPrecision(5));
  set('d-correl', fmt(r.correl[i]));
  set('d-sigma', r.sigma_x ? fmt(r.sigma_x[i]) + ', ' + fmt(r.sigma_y[i]) : 'not computed');
  set('d-code', err ? String(err.code) : 'none');
  set('d-message', err ? err.message : '');
}

function placeMarker() {
  const m = $('marker'), r = state.result, f = state.frame, i = state.selected;
  if (i < 0 || !r || !f || !figure.naturalWidth) { m.hidden = true; return; }
  const [X, Y] = toFigure(f, r.x[i], r.y[i]);
  // Percentages follow the image when the page resizes it.
  m.style.left = (100 * (X + 0.5)) / figure.naturalWidth + '%';
  m.style.top = (100 * (Y + 0.5)) / figure.naturalHeight + '%';
  m.hidden = false;
}

function renderJob(j) {
  const box = $('job');
  if (j.state === 'none') { box.textContent = j.message; return; }
  const pct = j.toCompute > 0 ? (100 * j.done) / j.toCompute : 100;
  const progress = document.createElement('progress');
  progress.max = 100;
  progress.value = pct;
  const rows = [
    ['state', j.state + (j.reason ? ' (' + j.reason + ')' : '')],
    ['last seen', j.lastSignOfLife || '-'],
    ['done', j.done + ' / ' + j.toCompute + ' (' + pct.toFixed(1) + ' %)'],
    ['failed', String(j.failed.length)],
    ['skipped', j.skipped + ' (already done)'],
    ['rate', j.ratePerSecond.toFixed(2) + ' pairs/s'],
    ['eta', j.etaSeconds === null ? '-' : Math.round(j.etaSeconds) + ' s'],
    ['started', j.start],
    ['ended', j.end || '-'],
    ['executor', j.executor + ', ' + j.ranks + ' rank(s)'],
    ['directory', j.jobDir.split('/').pop()],
  ];
  const table = document.createElement('table');
  for (const [key, value] of rows) {
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.textContent = key;
    const td = document.createElement('td');
    td.id = 'job-' + key;
    td.textContent = value;
    tr.append(th, td);
  }
  const failed = document.createElement('ul');
  for (const f of j.failed.slice(0, 10)) {
    const li = document.createElement('li');
    li.className = 'error';
    li.textContent = f.name + ': ' + f.error;
    failed.append(li);
  }
  box.replaceChildren(progress, table, failed);
}

function step(delta) {
  const i = state.index + delta;
  if (i >= 0 && i < state.files.length) show(i);
}

$('prev').addEventListener('click', () => step(-1));
$('next').addEventListener('click', () => step(1));
for (const id of ['image', 'vectors', 'background']) $(id).addEventListener('change', drawFigure);
document.addEventListener('keydown', (ev) => {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const t = ev.target;
  // Arrows belong to selects and text fields when they have the focus.
  if (t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && t.type !== 'checkbox')) return;
  if (ev.key === 'ArrowRight') step(1);
  else if (ev.key === 'ArrowLeft') step(-1);
  else if (ev.key === 'a' || ev.key === 'b') { $('image').value = ev.key; drawFigure(); }
  else if (ev.key === 'v') { $('vectors').checked = !$('vectors').checked; drawFigure(); }
  else return;
  ev.preventDefault();
});

/** New results of a running job appear in the list, and its progress is refreshed. */
async function poll() {
  await loadFiles().catch((e) => updateStatus('files: ' + e.message));
  await getJson('/api/job').then(renderJob, (e) => { $('job').textContent = e.message; });
  setTimeout(poll, POLL_MS);
}
poll();
</script>
</body>
</html>
`;
