"""The gallery page's fixed parts: stylesheet, the inline script that filters and pages, the skeleton.

The pairs travel as JSON inside ``<script type="application/json">`` (:func:`script_json` escapes
``<``, ``>`` and ``&``, so no caption can close the element); the script reads it with
``JSON.parse`` and builds every element with ``textContent``, never ``innerHTML``, so user text is
never parsed as HTML. A Content-Security-Policy allows only this one script (by its hash), inline
styles and ``data:`` images: no network, and an injected script or handler would not run.
This module knows nothing about pair tables; :mod:`misalignlab.report.gallery` fills it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

CSS = """body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}
th{background:#f6f6f6}code{background:#f4f4f4;word-break:break-all}.plot{max-width:48%;height:auto;margin-right:1%}
#controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:1}
#types button{margin:0 .3em .3em 0;padding:.25em .7em;border:1px solid #aaa;border-radius:1em;background:#fafafa;cursor:pointer}
#types button.on{background:#333;color:#fff}#types .of{color:#888;font-size:85%}#types button.on .of{color:#ccc}
.pager{margin:.6em 0}.pager button{padding:.2em .8em}#pageinfo{margin:0 1em}
.card{display:flex;gap:1em;border:1px solid #ddd;border-radius:6px;padding:.7em;margin:.7em 0}
.thumb{margin:0;flex:0 0 200px;text-align:center}.thumb img{max-width:192px;max-height:192px}
.thumb img.copy{width:128px;height:auto;image-rendering:pixelated}
.placeholder{width:192px;height:144px;background:repeating-linear-gradient(45deg,#eee,#eee 8px,#f8f8f8 8px,#f8f8f8 16px);
display:flex;align-items:center;justify-content:center;color:#888;border:1px dashed #bbb}
figcaption{font-size:80%;color:#666;max-width:196px;word-break:break-word}.why{color:#a00}
.body{flex:1;min-width:0}.head{margin-bottom:.4em}.multi{margin-left:.8em;background:#e8eefc;padding:0 .5em;border-radius:1em;font-size:85%}
.pair{border-left:5px solid #999;padding:.2em .6em;margin:.4em 0}.pair .top>*{margin-right:.8em}
.pair[data-type=aligned]{border-color:#228833}.pair[data-type=incomplete]{border-color:#ccbb44}
.pair[data-type=wrong]{border-color:#ee6677}.pair[data-type=unrelated]{border-color:#aa3377}
.type{font-weight:bold}.caption{font-size:110%;margin:.3em 0;white-space:pre-wrap;word-break:break-word}
.expl,.ev{margin:.2em 0;color:#444}.src,.det,.hidden,.key{color:#777;font-size:85%}.key{margin-left:.8em}
.probs span{display:inline-block;font-size:80%;margin-right:.6em;padding:0 .3em;border-radius:3px;background:#f2f2f2}
details.others{margin-top:.4em;color:#555}"""

SCRIPT = r"""(() => {
"use strict";
const D = JSON.parse(document.getElementById("gallery-data").textContent);
const $ = (id) => document.getElementById(id);
const state = {type: "", slot: "", q: "", page: 0};
const byImage = new Map();  // image index → pair indices, most suspicious first
D.pairs.forEach((p, i) => { if (!byImage.has(p.img)) byImage.set(p.img, []); byImage.get(p.img).push(i); });
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}
const fmt = (x) => (x === null || x === undefined ? "\u2013" : x.toFixed(3));
const slotsOf = (p) => [p.slot].concat(p.missing.split(",").map((s) => s.trim())).filter(Boolean);
function matches(p) {
  if (state.type && p.type !== state.type) return false;
  if (state.slot && !slotsOf(p).includes(state.slot)) return false;
  if (!state.q) return true;
  const im = D.images[p.img];
  return [p.cap, p.id, p.src, im.ref, im.key].join("\n").toLowerCase().includes(state.q);
}
function groups() {  // pairs are sorted by score, so cards come out ordered by their best matching pair
  const by = new Map();
  D.pairs.forEach((p, i) => { if (matches(p)) { if (!by.has(p.img)) by.set(p.img, []); by.get(p.img).push(i); } });
  return Array.from(by.entries());
}
function pairBox(p, cls) {
  const box = el("div", "pair " + cls);
  box.dataset.type = p.type;
  box.dataset.id = p.id;
  const top = el("div", "top");
  top.append(el("span", "type", p.type), el("span", "score", "score " + fmt(p.score)), el("code", "pid", p.id));
  if (p.src) top.append(el("span", "src", "source " + p.src));
  box.append(top, el("p", "caption", p.cap));
  if (p.expl) box.append(el("p", "expl", p.expl));
  if (p.stated || p.likely) {
    box.append(el("p", "ev", (p.slot ? p.slot + ": " : "") + "stated \u201c" + p.stated + "\u201d \u2192 likely \u201c" + p.likely + "\u201d"));
  }
  if (p.missing) box.append(el("p", "ev", "missing: " + p.missing));
  if (p.better) box.append(el("p", "ev", "better match: " + p.better));
  const probs = el("div", "probs");
  D.kinds.forEach((k, j) => probs.append(el("span", "p-" + k, "p_" + k + " " + fmt(p.p[j]))));
  box.append(probs);
  if (D.detectors.length) box.append(el("p", "det", D.detectors.map((d, j) => d + " " + fmt(p.det[j])).join(" \u00b7 ")));
  return box;
}
function thumb(im) {
  const fig = el("figure", "thumb");
  if (im.uri && im.uri.startsWith("data:image/")) {
    const img = el("img", im.note ? "copy" : "");
    img.src = im.uri;
    img.alt = "image " + im.key;
    fig.append(img);
    if (im.note) fig.append(el("figcaption", "note", im.note));
  } else {
    fig.append(el("div", "placeholder", "no preview"), el("figcaption", "why", im.why || "no image"));
  }
  return fig;
}
function card(imgIndex, shown) {
  const im = D.images[imgIndex], all = byImage.get(imgIndex);
  const c = el("article", "card"), body = el("div", "body"), head = el("div", "head");
  c.dataset.image = im.key;
  head.append(el("code", "path", im.ref || "(no file reference)"), el("span", "key", "image " + im.key));
  if (im.n > 1) head.append(el("span", "multi", im.n + " captions of this image"));
  body.append(head);
  shown.forEach((i) => body.append(pairBox(D.pairs[i], "match")));
  const rest = all.filter((i) => !shown.includes(i));
  if (rest.length) {
    const more = el("details", "others");
    more.append(el("summary", "", rest.length + " other caption(s) of this image in this page"));
    rest.forEach((i) => more.append(pairBox(D.pairs[i], "other")));
    body.append(more);
  }
  if (im.n > all.length) body.append(el("p", "hidden", (im.n - all.length) + " more caption(s) of this image not in this page (pairs.parquet has them)"));
  c.append(thumb(im), body);
  return c;
}
function render() {
  const g = groups(), per = D.pageSize, pages = Math.max(1, Math.ceil(g.length / per));
  state.page = Math.max(0, Math.min(state.page, pages - 1));
  const part = g.slice(state.page * per, (state.page + 1) * per);
  $("cards").replaceChildren(...part.map(([img, idx]) => card(img, idx)));
  const n = g.reduce((a, [, idx]) => a + idx.length, 0), first = state.page * per;
  $("pageinfo").textContent = g.length
    ? "page " + (state.page + 1) + " of " + pages + ": images " + (first + 1) + "\u2013" + (first + part.length) + " of " + g.length + " (" + n + " matching pairs)"
    : "no pair matches";
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
  document.querySelectorAll("#types button").forEach((b) => b.classList.toggle("on", b.dataset.type === state.type));
}
const reset = () => { state.page = 0; render(); };
document.querySelectorAll("#types button").forEach((b) => b.addEventListener("click", () => { state.type = b.dataset.type; reset(); }));
$("slot").addEventListener("change", (e) => { state.slot = e.target.value; reset(); });
$("q").addEventListener("input", (e) => { state.q = e.target.value.trim().toLowerCase(); reset(); });
const turn = (by) => { state.page += by; render(); $("controls").scrollIntoView(); };
$("prev").addEventListener("click", () => turn(-1));
$("next").addEventListener("click", () => turn(1));
render();
})();"""


def script_json(obj: Any) -> str:
    """JSON text that is safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and non-ASCII escaped.

    NaN is refused (``JSON.parse`` would reject it); callers pass ``None`` instead.
    """
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def csp(script: str) -> str:
    """The page's Content-Security-Policy: only ``script`` runs; images only from ``data:``; no network."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def page(title: str, head_html: str, controls_html: str, data: Any) -> str:
    """The whole page: ``head_html`` (summary, plots) and ``controls_html`` are trusted, already escaped HTML."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp(SCRIPT)}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{CSS}</style></head><body>{head_html}"
        f"<div id='controls'>{controls_html}<nav class='pager'><button id='prev' type='button'>\u2190 previous</button>"
        "<span id='pageinfo'></span><button id='next' type='button'>next \u2192</button></nav></div>"
        "<noscript><p>Filtering and paging need JavaScript; every pair is in pairs.parquet.</p></noscript>"
        "<main id='cards'></main>"
        f"<script type='application/json' id='gallery-data'>{script_json(data)}</script>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
