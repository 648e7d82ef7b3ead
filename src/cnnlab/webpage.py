"""Self-contained HTML pages (`cnnlab report`): parts a task's report sections are built from,
and the page that holds them, with its own stylesheet, laid out for a phone and a desktop alike.

Every picture is embedded as a base64 data: URL, so a page opens offline and shows the same.

One column that is never wider than the screen: pictures shrink to fit (max-width: 100%),
groups of pictures and the top-loss cards wrap into as many columns as fit, and wide tables
scroll inside their box instead of widening the page. No script, no font or link from outside.
"""
from __future__ import annotations

import base64
import io
from html import escape

import numpy as np
from PIL import Image

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       background: #f4f5f7; color: #1d2430; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 0 0 .75rem; }
section { background: #fff; border-radius: 10px; padding: 1rem; margin: 0 0 1rem;
          box-shadow: 0 1px 3px rgba(0, 0, 0, .08); }
img { max-width: 100%; height: auto; display: block; }
figure { margin: 0 0 1rem; }
figcaption { font-size: .85rem; color: #566070; margin-top: .25rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 300px), 1fr));
           gap: 1rem; align-items: start; }
.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e3e6ea;
         overflow-wrap: anywhere; }
th { background: #f0f2f5; }
.settings { display: grid; gap: .25rem 1rem; margin: 0;
            grid-template-columns: repeat(auto-fill, minmax(min(100%, 230px), 1fr)); }
.settings div { display: flex; gap: .5rem; justify-content: space-between;
                border-bottom: 1px solid #e3e6ea; padding: .2rem 0; font-size: .9rem; }
.settings dt { color: #566070; }
.settings dd { margin: 0; text-align: right; overflow-wrap: anywhere; }
.losses { list-style: none; padding: 0; margin: 0; display: grid; gap: .75rem;
          grid-template-columns: repeat(auto-fill, minmax(min(100%, 140px), 1fr)); }
.losses li { border: 1px solid #e3e6ea; border-radius: 8px; padding: .5rem; font-size: .8rem; }
.losses img { width: 100%; image-rendering: pixelated; }
.losses p { margin: .35rem 0 0; overflow-wrap: anywhere; }
@media (max-width: 600px) {
  main { padding: .5rem; }
  section { padding: .75rem; border-radius: 6px; }
  h1 { font-size: 1.3rem; }
}
"""


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_png(image) -> bytes:
    """uint8 C x H x W (a tensor or an array) -> PNG bytes at its own size (the page scales
    it up, pixelated)."""
    array = np.asarray(image).transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, "PNG")
    return buffer.getvalue()


def figure(png: bytes, caption: str) -> str:
    return (f'<figure><img src="{data_url(png)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{body}</section>'


def table(header, rows) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<div class="table"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def settings(rows) -> str:
    """Name-value pairs as a grid of as many columns as the screen holds."""
    items = "".join(f"<div><dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd></div>"
                    for k, v in rows)
    return f'<dl class="settings">{items}</dl>'


def page(title: str, parts: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{''.join(parts)}</main></body></html>\n")
