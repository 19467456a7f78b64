"""The web page: Gradio's layout and theme around three plain widgets (draw a digit, upload photos or scans,
write a number) whose script posts straight to the REST API.

No Gradio event runs on the server: a stroke is read by one ``fetch`` to ``/api/v1/predict`` as soon as
the pen lifts, and the answer is drawn by the script. So the page needs none of Gradio's upload, file
or queue routes, which the server's guard does not expose at all.
"""
from __future__ import annotations

import gradio as gr

from ..data.csvcell import JS_TEXT_CELL

__all__ = ["page", "CSS", "SCRIPT"]

CSS = """
.pad-wrap { max-width: 420px; }
.pad-wrap.wide { max-width: 900px; }  /* a number needs room: about 8 digits at a finger's size */
.pad { width: 100%; aspect-ratio: 1; touch-action: none; background: #fff; border: 1px solid #ced4da;
       border-radius: 8px; cursor: crosshair; display: block; }
.pad.wide { aspect-ratio: 4; }
.pad:focus { outline: 3px solid #3b5bdb; }
.pad-tools { display: flex; gap: .5rem; margin: .5rem 0; }
.pad-tools button { padding: .4rem 1rem; border: 1px solid #ced4da; border-radius: 6px; background: #f8f9fa; }
.result { min-height: 10rem; }
.result .digit { font-size: 7rem; font-weight: 700; line-height: 1; text-align: center; }
.result .confidence, .result .note { text-align: center; font-size: 1.1rem; }
.result .digit.unsure { opacity: .55; font-size: 4rem; }
.downloads a { margin-right: 1rem; }
@media (max-width: 640px) {  /* a phone: the pad takes the screen's width, the answer goes under it */
  .pads-row { flex-direction: column !important; }
  .pads-row > * { min-width: 0 !important; width: 100% !important; }
  .pad-wrap { max-width: none; }
}
.result .none, .result .error { font-size: 1.4rem; text-align: center; padding: 2rem 0; opacity: .8; }
.result .error { color: #c92a2a; opacity: 1; }
.number .digit { font-size: 4rem; letter-spacing: .05em; }
.top3 { list-style: none; padding: 0; margin: .5rem auto; max-width: 16rem; }
.top3 li { display: flex; justify-content: space-between; }
.seen img { width: 140px; height: 140px; image-rendering: pixelated; border: 1px solid #ced4da; }
.boxes { position: relative; display: inline-block; max-width: 100%; }
.boxes img { max-width: 100%; display: block; }
.boxes .box { position: absolute; border: 2px solid #3b5bdb; color: #3b5bdb; font-weight: 700; }
.boxes .box span { position: absolute; top: -1.4em; left: 0; background: #fff; padding: 0 .2em; }
table.files { border-collapse: collapse; margin-top: .5rem; }
table.files td, table.files th { border-bottom: 1px solid #dee2e6; padding: .2rem .6rem; text-align: left; }
.fix { text-align: center; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .3rem; justify-content: center;
       align-items: center; }
.fix button { min-width: 2.4rem; min-height: 2.4rem; border: 1px solid #ced4da; border-radius: 6px; background: #f8f9fa; }
.fix input { font-size: 1.1rem; padding: .3rem; width: 10rem; }
.fix .saved { color: #2b8a3e; }
.fix .error { color: #c92a2a; }
.model-line { opacity: .7; font-size: .85rem; }
"""


def _pad(name: str, label: str, wide: bool = False) -> str:
    size = 'width="1000" height="250"' if wide else 'width="280" height="280"'
    return (f'<div class="pad-wrap{" wide" if wide else ""}">'
            f'<canvas id="{name}" class="pad{" wide" if wide else ""}" {size} tabindex="0" role="img" '
            f'aria-label="{label}"></canvas>'
            f'<div class="pad-tools"><button type="button" data-undo="{name}">Undo</button>'
            f'<button type="button" data-clear="{name}">Clear</button></div></div>')


def _result(name: str, extra: str = "") -> str:
    return (f'<div id="{name}-result" class="result" aria-live="polite"></div>'
            f'<div id="{name}-fix" class="fix"></div>'
            f'<ul id="{name}-top3" class="top3"></ul><div id="{name}-seen" class="seen"></div>{extra}')


def page() -> gr.Blocks:
    """The page's layout; its behaviour is ``SCRIPT``, run once when the page loads."""
    with gr.Blocks(title="digitrec", analytics_enabled=False) as blocks:
        gr.Markdown("# digitrec\nDraw a digit, upload photos or scans of digits, or write a number. The REST API "
                    "under `/api/v1` is described at [/openapi.json](/openapi.json).")
        with gr.Tabs():
            with gr.Tab("Draw", id="draw"), gr.Row(elem_classes="pads-row"):
                gr.HTML(_pad("sketchpad", "Drawing pad: draw one digit with the mouse, a pen or a finger"))
                gr.HTML(_result("draw"))
            with gr.Tab("Upload", id="upload"), gr.Row(elem_classes="pads-row"):
                gr.HTML('<div id="upload"><label for="upload-files">Photos or scans, one digit each</label><br>'
                        '<input id="upload-files" type="file" accept="image/*" multiple></div>'
                        '<table id="upload-table" class="files"></table>')
                gr.HTML(_result("upload"))
            with gr.Tab("Write a number", id="number"):
                gr.HTML('<label for="number-kind">What it is </label><select id="number-kind">'
                        '<option value="any">a number (digits and . , - /)</option>'
                        '<option value="digits">digits only (a ZIP code, an account number)</option>'
                        '<option value="amount">an amount (1,250.00)</option>'
                        '<option value="date">a date (31/12/26)</option></select>')
                gr.HTML(_pad("numberpad", "Writing pad: write a number on one line (a ZIP code, an amount)",
                             wide=True))
                gr.HTML('<div id="number-result" class="result number" aria-live="polite"></div>'
                        '<div id="number-fix" class="fix"></div><div id="number-boxes" class="boxes"></div>')
        gr.HTML('<p id="model-line" class="model-line"></p>')
    return blocks


# Runs once in the browser. Pads keep their strokes (for undo) and post a PNG of the canvas (black ink on
# a transparent background, which the reader takes from the alpha channel) when the pen lifts; a newer
# request aborts an older one. Every answer is written with textContent, never as HTML. Under a reading,
# when the server stores corrections (its health says so), "Wrong? It is a ..." sends the same picture
# with the right answer to /api/v1/corrections.
SCRIPT = r"""() => {
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
                                   if (text !== undefined) e.textContent = text; return e; };
  const pct = p => (100 * p).toFixed(1) + ' %';
  const post = path => (fd, signal) => fetch(path, {method: 'POST', body: fd, signal, credentials: 'same-origin'})
    .then(async r => { const j = await r.json().catch(() => ({error: 'the server sent no readable answer'}));
                       if (!r.ok) throw new Error(j.error || ('error ' + r.status)); return j; });
  const pictures = {}, hints = {};  // tab -> the picture last read there (sent again with a correction), its hint
  // several digit-sized marks side by side (column runs of ink apart by a gap, each at least half as tall as
  // all the ink): the one-digit pad reads one digit, so say where numbers are read
  const severalMarks = canvas => {
    const {width, height} = canvas, a = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const top = new Array(width).fill(height), bottom = new Array(width).fill(-1);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++)
      if (a[4 * (y * width + x) + 3] > 64) { if (y < top[x]) top[x] = y; bottom[x] = y; }
    const runs = [], gap = width / 35;
    let run = null, empty = 0;
    for (let x = 0; x < width; x++) {
      if (bottom[x] < 0) { if (run && ++empty >= gap) { runs.push(run); run = null; } continue; }
      empty = 0; run = run || {top: height, bottom: -1};
      run.top = Math.min(run.top, top[x]); run.bottom = Math.max(run.bottom, bottom[x]);
    }
    if (run) runs.push(run);
    const tall = Math.max(...runs.map(r => r.bottom), -1) - Math.min(...runs.map(r => r.top), height);
    return runs.filter(r => r.bottom - r.top >= tall / 2).length >= 2;
  };
  let storing = false;
  fetch('/api/v1/health', {credentials: 'same-origin'}).then(r => r.json()).then(h => {
    storing = !!h.stores_corrections;
    const line = document.getElementById('model-line');
    if (line && h.model) line.textContent = 'Model in use: ' + h.model.arch + (h.model.preset ? ' (' + h.model.preset
      + ')' : '') + (h.model.checksum ? ', ' + h.model.checksum.replace('sha256:', '').slice(0, 12) : '');
  }).catch(() => {});
  const fix = (name, read, kind) => {
    const box = document.getElementById(name + '-fix'); box.replaceChildren();
    if (!storing || !pictures[name]) return;
    const picture = pictures[name];
    const send = async correct => {
      const fd = new FormData(); fd.append('image', picture, 'picture.png');
      for (const [k, v] of [['correct', correct], ['read', read], ['kind', kind], ['source', 'page']]) fd.append(k, v);
      try { await post('/api/v1/corrections')(fd);
            box.replaceChildren(el('span', 'saved', 'Saved: it is ' + correct + '. Thank you: the next model learns from it.')); }
      catch (err) { box.replaceChildren(el('span', 'error', 'Not saved: ' + err.message)); }
    };
    box.append(el('span', '', kind === 'digit' ? 'Wrong? It is a' : 'Wrong? It says'));
    if (kind === 'digit') for (let d = 0; d < 10; d++) {
      const b = el('button', '', String(d)); b.type = 'button'; b.setAttribute('aria-label', 'it is a ' + d);
      b.addEventListener('click', () => send(String(d))); box.append(b); }
    else { const input = el('input'), b = el('button', '', 'Save'); input.type = 'text'; input.maxLength = 64;
           input.setAttribute('aria-label', 'what the number really says'); b.type = 'button';
           const go = () => { if (input.value.trim()) send(input.value.trim()); };
           b.addEventListener('click', go); input.addEventListener('keydown', e => { if (e.key === 'Enter') go(); });
           box.append(input, b); }
  };
  const show = (name, p) => {
    const out = document.getElementById(name + '-result'), top = document.getElementById(name + '-top3'),
          seen = document.getElementById(name + '-seen');
    out.replaceChildren(); if (top) top.replaceChildren(); if (seen) seen.replaceChildren();
    document.getElementById(name + '-fix').replaceChildren();
    if (p === null) return;
    if (p.error) { out.append(el('div', 'error', p.error)); return; }
    fix(name, p.digit === null ? '' : String(p.digit), 'digit');
    if (p.digit === null) { out.append(el('div', 'none', 'no digit found')); }
    else { out.append(el('div', p.unsure ? 'digit unsure' : 'digit', String(p.digit)),
                      el('div', 'confidence', 'confidence ' + pct(p.confidence)));
           if (p.unsure) out.append(el('div', 'note', 'Not sure: is it ' + p.top3[0].digit + ' or ' + p.top3[1].digit
                                      + '? It may also not be a digit. Please check.')); }
    if (hints[name]) out.append(el('div', 'note', 'This looks like several digits: this pad reads one. '
                                              + 'The "Write a number" tab reads numbers.'));
    if (top) for (const t of p.top3) { const li = el('li'); li.append(el('span', '', String(t.digit)),
                                                                   el('span', '', pct(t.probability))); top.append(li); }
    if (seen && p.input) { const img = el('img'); img.src = p.input; img.alt = 'the 28x28 image the model read';
                           seen.append(img); }
  };
  const pads = {};
  const pngOf = canvas => new Promise(res => canvas.toBlob(res, 'image/png'));
  function setup(canvas, onRead) {
    if (!canvas || canvas.dataset.ready) return;
    canvas.dataset.ready = '1';
    const ctx = canvas.getContext('2d'), strokes = [];
    let current = null, pending = null;
    const width = () => canvas.width / 20;
    const redraw = () => { ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = '#000'; ctx.lineWidth = width(); ctx.lineCap = ctx.lineJoin = 'round';
      for (const s of strokes) { ctx.beginPath(); ctx.moveTo(s[0][0], s[0][1]);
        for (const [x, y] of s) ctx.lineTo(x, y); if (s.length === 1) ctx.lineTo(s[0][0] + .1, s[0][1]); ctx.stroke(); } };
    const at = e => { const r = canvas.getBoundingClientRect();
      return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
    const read = async () => {
      if (pending) pending.abort();
      if (!strokes.length) { onRead(null); return; }
      const mine = pending = new AbortController(), fd = new FormData(), png = await pngOf(canvas);
      fd.append('image', png, 'drawing.png');
      hints[onRead.tab] = onRead.tab === 'draw' && severalMarks(canvas);
      try { const j = await onRead.post(fd, mine.signal); if (mine === pending) { pictures[onRead.tab] = png; onRead(j); } }
      catch (err) { if (err.name !== 'AbortError' && mine === pending) onRead({error: err.message}); }
    };
    canvas.addEventListener('pointerdown', e => { canvas.setPointerCapture(e.pointerId); current = [at(e)];
                                                  strokes.push(current); redraw(); });
    canvas.addEventListener('pointermove', e => { if (!current) return; current.push(at(e)); redraw(); });
    const lift = () => { if (!current) return; current = null; read(); };
    canvas.addEventListener('pointerup', lift); canvas.addEventListener('pointercancel', lift);
    pads[canvas.id] = {undo: () => { strokes.pop(); redraw(); read(); },
                       clear: () => { strokes.length = 0; redraw(); read(); }};
  }
  const readDigit = Object.assign(p => show('draw', p), {post: post('/api/v1/predict?include_input=true'), tab: 'draw'});
  const readNumber = Object.assign(n => {
    const out = document.getElementById('number-result'), boxes = document.getElementById('number-boxes');
    out.replaceChildren(); boxes.replaceChildren(); document.getElementById('number-fix').replaceChildren();
    if (n === null) return;
    if (n.error) { out.append(el('div', 'error', n.error)); return; }
    fix('number', n.text, 'number');
    if (!n.text) { out.append(el('div', 'none', 'no digits found')); return; }
    out.append(el('div', n.unsure ? 'digit unsure' : 'digit', n.text),
               el('div', 'confidence', 'confidence ' + pct(n.confidence) + (n.value ? ', amount ' + n.value : '')));
    if (n.unsure) out.append(el('div', 'note', 'Not sure: please check it.'));
    const pad = document.getElementById('numberpad'), img = el('img', 'base-image');
    img.src = pad.toDataURL('image/png'); img.alt = 'your writing, a box around each digit read'; boxes.append(img);
    const label = ([x, y, w, h], text) => { const b = el('div', 'box');
      Object.assign(b.style, {left: 100 * x / pad.width + '%', top: 100 * y / pad.height + '%',
                              width: 100 * w / pad.width + '%', height: 100 * h / pad.height + '%'});
      b.append(el('span', '', text)); boxes.append(b); };
    for (const d of n.digits) label(d.box, d.digit + ' ' + pct(d.confidence));
    for (const s of n.separators || []) label(s.box, s.char);
    // the API decides which digits a person should check, so the page and the API never disagree
    n.digits.forEach((d, i) => { if (d.unsure) out.append(el('div', 'note', 'Not sure of digit ' + (i + 1)
      + ': ' + d.top3[0].digit + ' or ' + d.top3[1].digit + '?')); });
  }, {post: (fd, signal) => post('/api/v1/read?kind=' + document.getElementById('number-kind').value)(fd, signal),
      tab: 'number'});
  async function upload(files) {
    const table = document.getElementById('upload-table'); table.replaceChildren(); show('upload', null);
    const results = [];
    for (const f of files) {
      const fd = new FormData(); fd.append('image', f, f.name);
      try { results.push([f.name, await post('/api/v1/predict?include_input=true')(fd)]); }
      catch (err) { results.push([f.name, {error: err.message}]); }
    }
    if (results.length) { pictures.upload = files[0]; show('upload', results[0][1]); }
    if (results.length < 2) return;
    const head = el('tr'); head.append(el('th', '', 'file'), el('th', '', 'reading')); table.append(head);
    for (const [name, p] of results) {
      const tr = el('tr'); tr.append(el('td', '', name), el('td', '', p.error ? p.error
        : p.digit === null ? 'no digit' : p.digit + ' (' + pct(p.confidence) + (p.unsure ? ', not sure' : '') + ')'));
      table.append(tr);
    }
    const rows = results.map(([file, p]) => ({file, digit: p.error ? null : p.digit, confidence: p.error ? null
      : p.confidence, unsure: p.error ? null : p.unsure, error: p.error || null}));
    const text = __TEXT_CELL__;  // data.csvcell: a file name or error text never runs as a formula
    const cell = v => { const s = text(v); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; };
    const csv = ['file,digit,confidence,unsure,error', ...rows.map(r => ['file', 'digit', 'confidence', 'unsure',
      'error'].map(k => cell(r[k])).join(','))].join('\n') + '\n';
    const links = el('tr'), td = el('td', 'downloads'); td.colSpan = 2;
    for (const [label, type, body] of [['Download CSV', 'text/csv', csv],
                                       ['Download JSON', 'application/json', JSON.stringify(rows, null, 1)]]) {
      const a = el('a', '', label); a.href = URL.createObjectURL(new Blob([body], {type}));
      a.download = 'digitrec-results.' + (type === 'text/csv' ? 'csv' : 'json'); td.append(a); }
    links.append(td); table.append(links);
  }
  const init = () => {
    setup(document.getElementById('sketchpad'), readDigit);
    setup(document.getElementById('numberpad'), readNumber);
    const input = document.getElementById('upload-files');
    if (input && !input.dataset.ready) { input.dataset.ready = '1';
      input.addEventListener('change', () => upload([...input.files])); }
  };
  document.addEventListener('click', e => {
    const t = e.target.closest('[data-undo],[data-clear]'); if (!t) return;
    const pad = pads[t.dataset.undo || t.dataset.clear]; if (pad) (t.dataset.undo ? pad.undo : pad.clear)();
  });
  init(); new MutationObserver(init).observe(document.body, {childList: true, subtree: true});
}""".replace("__TEXT_CELL__", JS_TEXT_CELL)
