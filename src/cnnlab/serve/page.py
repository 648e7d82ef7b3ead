"""The web page at `/`: choose or drop an image (a video, for a video model), see what the
model's task answers beside it: the top classes with their probabilities and the Grad-CAM
heat map (classification), the mask over the image (segmentation), the boxes drawn
(detection), the upscaled image, the caption with its attention, the embedding, or, for a
GAN, new images at the press of a button.

One HTML string with its own style and script: no font, script or picture from elsewhere, so
it works offline, and the Content-Security-Policy below makes the browser hold it to that.
The layout is the report's (webpage.STYLE): one column on a phone, image and answer side by
side where there is room. Errors are shown on the page, never thrown to the console.
"""
from __future__ import annotations

from ..webpage import STYLE

# Only this page's own inline style and script, images it made itself (data: and blob:
# URLs), and requests back to the service.
CONTENT_SECURITY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "img-src data: blob:; connect-src 'self'; form-action 'none'; "
                    "frame-ancestors 'none'; base-uri 'none'")

PAGE_STYLE = """
[hidden] { display: none !important; }
#preview, #cam, #pictures img { width: 100%; image-rendering: pixelated; }
#text p { margin: 0 0 .5rem; overflow-wrap: anywhere; }
#caption { font-size: 1.2rem; }
#drop { display: block; border: 2px dashed #9aa4b2; border-radius: 10px; padding: 1.5rem 1rem;
        text-align: center; cursor: pointer; background: #fafbfc; }
#drop.over { border-color: #2f6fdf; background: #eef4ff; }
#drop input { display: block; margin: .75rem auto 0; max-width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin: .75rem 0 0; }
.row label { font-size: .9rem; color: #566070; }
select, input[type=password] { font: inherit; max-width: 100%; }
#status { min-height: 1.5em; margin: .5rem 0 0; color: #566070; overflow-wrap: anywhere; }
#status.bad { color: #b3261e; }
#top { list-style: none; padding: 0; margin: 0; }
#top li { margin: 0 0 .5rem; }
#top .name { display: flex; justify-content: space-between; gap: .5rem; font-size: .95rem; }
#top .bar { height: .5rem; background: #2f6fdf; border-radius: 4px; min-width: 2px; }
#top .track { background: #e3e6ea; border-radius: 4px; }
"""

BODY = """
<section id="choose"><h2>Image</h2>
<label id="drop" for="file">Drop an image here, or choose one
<input id="file" type="file" accept="image/*"></label>
<div class="row"><label for="model">model</label><select id="model"></select>
<span id="about"></span></div>
<div class="row" id="tokenrow" hidden><label for="token">token</label>
<input id="token" type="password" autocomplete="off"></div>
<div class="row" id="generaterow" hidden><button id="generate" type="button">Draw new
images</button></div>
<p id="status" role="status"></p></section>
<section id="answer" hidden><h2>Answer</h2><div class="figures">
<figure id="previewfigure"><img id="preview" alt="the image sent">
<figcaption id="filename"></figcaption></figure>
<div><div id="text"></div><ol id="top"></ol></div>
<figure id="camfigure"><img id="cam" alt="Grad-CAM heat map">
<figcaption id="camcaption"></figcaption></figure>
</div><div class="figures" id="pictures"></div></section>
"""

SCRIPT = r"""
const $ = (id) => document.getElementById(id);
let models = [];
function say(text, bad) {
  $("status").textContent = text;
  $("status").className = bad ? "bad" : "";
}
function headers() {
  const token = $("token").value || sessionStorage.getItem("cnnlab-token") || "";
  return token ? {"Authorization": "Bearer " + token} : {};
}
async function ask(path, options) {
  const response = await fetch(path, Object.assign({headers: headers()}, options || {}));
  let body = {};
  try { body = await response.json(); } catch (e) { body = {error: response.statusText}; }
  if (response.status === 401) { $("tokenrow").hidden = false; }
  if (!response.ok) { throw new Error(body.error || ("status " + response.status)); }
  return body;
}
async function loadModels() {
  try {
    models = (await ask("/models")).models;
  } catch (e) { say(e.message, true); return; }
  $("model").replaceChildren(...models.map((m) => new Option(m.name, m.name)));
  showModel();
  say("Choose or drop an image.");
}
function chosen() { return models.find((m) => m.name === $("model").value); }
function showModel() {
  const m = chosen();
  if (m) {
    const what = ["classify", "segment", "detect", "instance", "video"].includes(m.task)
      ? ", " + m.classes.length + " classes" : "";
    $("about").textContent = m.task + what + ", input " + m.input_size.join(" x ");
    $("file").accept = m.task === "video" ? "video/*" : "image/*";
    $("generaterow").hidden = m.needs_image;
  }
}
function form(file) { const data = new FormData(); data.append("file", file, file.name); return data; }
function clear(file) {
  $("answer").hidden = false;
  $("previewfigure").hidden = !file || file.type.startsWith("video");
  if (file) { $("preview").src = URL.createObjectURL(file); }
  $("filename").textContent = file ? file.name : "";
  for (const id of ["top", "text", "pictures"]) { $(id).replaceChildren(); }
  $("camfigure").hidden = true;
  $("cam").removeAttribute("src");
  $("camcaption").textContent = "";
}
async function send(file) {
  if (!file) { return; }
  const m = chosen(), model = encodeURIComponent($("model").value);
  clear(file);
  say("Asking the model...");
  try {
    const result = await ask("/predict?top_k=5&model=" + model,
                             {method: "POST", body: form(file)});
    if (!result.predictions.length) { throw new Error(result.errors[0].error); }
    show(result);
    if (m && m.gradcam) {
      say("Drawing the Grad-CAM heat map...");
      const cam = await ask("/gradcam?model=" + model, {method: "POST", body: form(file)});
      $("camfigure").hidden = false;
      $("cam").src = cam.image;
      $("camcaption").textContent = "Grad-CAM for '" + cam.class + "', layer " + cam.layer;
    }
    say("Done.");
  } catch (e) { say(e.message, true); }
}
async function generate() {
  clear(null);
  say("Drawing new images...");
  try {
    show(await ask("/predict?count=16&model=" + encodeURIComponent($("model").value),
                   {method: "POST"}));
    say("Done.");
  } catch (e) { say(e.message, true); }
}
function paragraph(text, id) {
  const p = document.createElement("p"); p.textContent = text;
  if (id) { p.id = id; }
  $("text").append(p);
}
function picture(url, caption) {
  const figure = document.createElement("figure");
  const img = document.createElement("img"); img.src = url; img.alt = caption;
  const text = document.createElement("figcaption"); text.textContent = caption;
  figure.append(img, text); $("pictures").append(figure);
}
const PICTURES = {overlay: "the mask over the image", mask: "the mask (class numbers)",
                  picture: "the detections drawn", upscaled: "upscaled",
                  sheet: "input | bicubic | cnnlab", attention: "where it looked for each word"};
function show(result) {
  const p = result.predictions[0];
  if (result.grid) { picture(result.grid, result.predictions.length + " new images"); return; }
  if (p.top) { $("top").replaceChildren(...p.top.map(row)); }
  if (p.class_fractions) {
    const shares = Object.entries(p.class_fractions).filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]);
    $("top").replaceChildren(...shares.map(([c, v]) => row({class: c, probability: v})));
  }
  if (p.detections) {
    paragraph(p.detections.length ? p.detections.length + " found: " + p.detections.map(
      (d) => d.class + " " + d.score.toFixed(2)).join(", ") : "nothing above the score threshold");
  }
  if (p.caption !== undefined) { paragraph(p.caption || "(an empty sentence)", "caption"); }
  if (p.real !== undefined) { $("top").replaceChildren(row({class: "real", probability: p.real})); }
  if (p.embedding) {
    paragraph("embedding of " + p.embedding.length + " numbers: " + p.embedding.slice(0, 4)
      .map((v) => v.toFixed(3)).join(", ") + " ...");
  }
  if (p.upscaled_size) {
    paragraph(p.size.join(" x ") + " -> " + p.upscaled_size.join(" x ") + " (x" + p.scale + ")");
  }
  for (const [key, caption] of Object.entries(PICTURES)) {
    if (typeof p[key] === "string" && p[key].startsWith("data:image/")) {
      picture(p[key], caption);
    }
  }
}
function row(t) {
  const li = document.createElement("li");
  const name = document.createElement("div"); name.className = "name";
  const label = document.createElement("span");
  label.className = "class";
  label.textContent = t.class;
  const p = document.createElement("span"); p.textContent = (100 * t.probability).toFixed(1) + "%";
  name.append(label, p);
  const track = document.createElement("div"); track.className = "track";
  const bar = document.createElement("div"); bar.className = "bar";
  bar.style.width = (100 * t.probability) + "%";
  track.append(bar); li.append(name, track);
  return li;
}
let last = null;  // the image last sent: asked again when another model is chosen
$("file").addEventListener("change", () => {
  last = $("file").files[0];
  $("file").value = "";  // so that choosing the same file again sends it again
  send(last);
});
$("model").addEventListener("change", () => {
  showModel();
  const m = chosen();
  if (last && m && m.needs_image && (m.task === "video") === last.type.startsWith("video")) {
    send(last);
  }
});
$("generate").addEventListener("click", generate);
$("token").addEventListener("change", () => {
  sessionStorage.setItem("cnnlab-token", $("token").value);
  loadModels();
});
const drop = $("drop");
for (const kind of ["dragenter", "dragover"]) {
  drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const kind of ["dragleave", "drop"]) {
  drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (e) => { last = e.dataTransfer.files[0]; send(last); });
loadModels();
"""


def page_html() -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>cnnlab serve</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}{PAGE_STYLE}</style></head>"
            f"<body><main><h1>cnnlab serve</h1>{BODY}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")
