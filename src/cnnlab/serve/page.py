"""The web page at `/`: choose or drop an image, see the model's top classes with their
probabilities and the Grad-CAM heat map beside the image.

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
#preview, #cam { width: 100%; }
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
<p id="status" role="status"></p></section>
<section id="answer" hidden><h2>Answer</h2><div class="figures">
<figure><img id="preview" alt="the image sent"><figcaption id="filename"></figcaption></figure>
<div><ol id="top"></ol></div>
<figure><img id="cam" alt="Grad-CAM heat map"><figcaption id="camcaption"></figcaption></figure>
</div></section>
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
function showModel() {
  const m = models.find((m) => m.name === $("model").value);
  if (m) {
    $("about").textContent = m.task + ", " + m.classes.length + " classes, input "
      + m.input_size.join(" x ");
  }
}
function form(file) { const data = new FormData(); data.append("file", file, file.name); return data; }
async function send(file) {
  if (!file) { return; }
  const model = encodeURIComponent($("model").value);
  $("answer").hidden = false;
  $("preview").src = URL.createObjectURL(file);
  $("filename").textContent = file.name;
  $("top").replaceChildren();
  $("cam").removeAttribute("src");
  $("camcaption").textContent = "";
  say("Asking the model...");
  try {
    const result = await ask("/predict?top_k=5&model=" + model,
                             {method: "POST", body: form(file)});
    if (!result.predictions.length) { throw new Error(result.errors[0].error); }
    $("top").replaceChildren(...result.predictions[0].top.map(row));
    say("Drawing the Grad-CAM heat map...");
    const cam = await ask("/gradcam?model=" + model, {method: "POST", body: form(file)});
    $("cam").src = cam.image;
    $("camcaption").textContent = "Grad-CAM for '" + cam.class + "', layer " + cam.layer;
    say("Done.");
  } catch (e) { say(e.message, true); }
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
$("file").addEventListener("change", () => send($("file").files[0]));
$("model").addEventListener("change", showModel);
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
drop.addEventListener("drop", (e) => send(e.dataTransfer.files[0]));
loadModels();
"""


def page_html() -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>cnnlab serve</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}{PAGE_STYLE}</style></head>"
            f"<body><main><h1>cnnlab serve</h1>{BODY}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")
