"""Evaluation pictures and the HTML report: the right mistakes in the right order, honest
calibration numbers, and a page that a real browser renders with every picture decoded.

The browser is Debian's headless Chromium at /usr/bin/chromium. A test never installs
software: .ci/run installs it before `make test`, and elsewhere the browser test is skipped
with the command that installs it (README, Developing).
"""
from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli.main import main
from cnnlab.tasks.diagnostics import examine, reliability
from cnnlab.infer.evaluate import evaluate_run

CHROMIUM = Path("/usr/bin/chromium")
# As root in a container: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--window-size=1400,1000"]


def _test_batches(run_dir):
    from cnnlab.data import load_dataset
    from cnnlab.data.pipeline import build_pipeline
    from cnnlab.runs.folder import load_run
    run = load_run(run_dir)
    pipeline = build_pipeline(load_dataset(run.spec.config.dataset), 0, None, batch_size=50,
                              device=torch.device("cpu"), only=("test",),
                              preprocess=run.spec.preprocess)
    return run, pipeline.batches["test"]


def _expected_top_losses(run_dir, k: int = 16) -> list[tuple[int, float]]:
    """Independently, from engine.evaluate's probabilities: (index, loss) of the k worst
    misclassified test images, highest loss first."""
    from cnnlab.engine.loop import evaluate
    from cnnlab.tasks.classify import Classify
    run, batches = _test_batches(run_dir)
    result = evaluate(run.model, batches, Classify())
    losses = -torch.log(result.probabilities[torch.arange(len(result.labels)), result.labels])
    wrong = (result.predictions != result.labels).nonzero().flatten().tolist()
    ranked = sorted(wrong, key=lambda i: (-float(losses[i]), i))[:k]
    return [(i, float(losses[i])) for i in ranked]


def test_top_losses_are_the_worst_mistakes_only_in_order_of_loss(short_run):
    report = evaluate_run(short_run.run_dir, device="cpu")
    expected = _expected_top_losses(short_run.run_dir)
    assert len(expected) == 16  # a two-epoch model makes plenty of mistakes
    assert [m["index"] for m in report["top_losses"]] == [i for i, _ in expected]
    np.testing.assert_allclose([m["loss"] for m in report["top_losses"]],
                               [loss for _, loss in expected], rtol=1e-4)
    assert all(m["true"] != m["predicted"] for m in report["top_losses"])
    for name in ("top_losses.png", "per_class.png", "reliability.png", "confusion.png"):
        assert (short_run.run_dir / name).stat().st_size > 5000


def test_examine_agrees_with_the_engine_and_keeps_each_mistakes_image(short_run):
    from cnnlab.tasks.diagnostics import denormalise
    from cnnlab.engine.loop import evaluate
    from cnnlab.tasks.classify import Classify
    run, batches = _test_batches(short_run.run_dir)
    plain = evaluate(run.model, batches, Classify())
    result, mistakes = examine(run.model, batches, run.spec.preprocess, top_k=5)
    assert result.loss == pytest.approx(plain.loss, rel=1e-5)
    assert result.accuracy == plain.accuracy and torch.equal(result.predictions, plain.predictions)
    inputs = torch.cat([x for x, _ in batches])
    for mistake in mistakes:
        assert torch.equal(mistake.image, denormalise(inputs[mistake.index][None],
                                                      run.spec.preprocess)[0])


def test_reliability_bins_and_expected_calibration_error():
    """Ten predictions at 0.95, all right, and ten at 0.55, half right: each bin is 0.05 away
    from its accuracy, so the ECE is 0.05; a well-calibrated set gives 0."""
    probabilities = torch.tensor([[0.95, 0.05]] * 10 + [[0.55, 0.45]] * 10)
    labels = torch.tensor([0] * 10 + [0, 1] * 5)
    bins = reliability(probabilities, labels)
    assert bins["counts"][9] == 10 and bins["counts"][5] == 10 and sum(bins["counts"]) == 20
    assert bins["accuracy"][9] == 1.0 and bins["accuracy"][5] == 0.5
    assert bins["confidence"][9] == pytest.approx(0.95) and bins["accuracy"][0] is None
    assert bins["ece"] == pytest.approx(0.05)
    calibrated = reliability(torch.tensor([[0.75, 0.25]] * 4), torch.tensor([0, 0, 0, 1]))
    assert calibrated["ece"] == pytest.approx(0.0)


# ----------------------------------------------------------------------------- the page

@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; the test is skipped, saying how to install it, where it is absent."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}; install Debian's chromium "
                    "(sudo apt-get install chromium chromium-driver; see README, Developing)")
    return CHROMIUM


# Injected first into a copy of the page: it notes every error (scripts, and resources that
# fail to load, caught in the capture phase) and, once the page has loaded, what it shows.
PROBE = """<script>(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var what = e.message || ('could not load ' + (e.target && (e.target.src || e.target.tagName)));
    errors.push(String(what).slice(0, 80));
  }, true);
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    var wide = images.filter(function (i) { return i.getBoundingClientRect().right > innerWidth + 1; });
    var cards = Array.prototype.map.call(document.querySelectorAll('.losses li'), function (li) {
      return [li.dataset.true, li.dataset.predicted, Number(li.dataset.loss), li.innerText]; });
    parent.document.body.setAttribute('data-' + frameElement.id, JSON.stringify({
      images: images.length, errors: errors, viewport: innerWidth, cards: cards,
      page_width: document.documentElement.scrollWidth, too_wide: wide.length,
      decoded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length}));
  });
})();</script>"""


def _render(chromium: Path, report: Path, folder: Path) -> tuple[dict, list[str]]:
    """The report in a phone-wide (360 px) and a desktop-wide (1280 px) frame: what each
    frame's probe saw, and every console line Chromium logged."""
    probed = report.read_text().replace("<head>", "<head>" + PROBE, 1)
    frames = "".join(f'<iframe id="{name}" style="width:{width}px;height:800px;border:0" '
                     f'srcdoc="{html.escape(probed, quote=True)}"></iframe>'
                     for name, width in (("phone", 360), ("desktop", 1280)))
    page = folder / "frames.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{frames}"
                    "</body></html>")
    done = subprocess.run([str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stderr[-2000:]
    seen = {name: json.loads(html.unescape(value)) for name, value in
            re.findall(r'data-(phone|desktop)="([^"]*)"', body.group(1))}
    return seen, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow  # starts Chromium
def test_report_renders_in_chromium_with_every_picture_and_no_console_error(
        short_run, chromium, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(short_run.run_dir), "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    text = out.read_text()
    # Self-contained: no script, stylesheet link or address outside the file itself.
    assert "<script" not in text and "<link" not in text
    assert not re.search(r'(src|href)="(?!data:image/png;base64,)', text)
    for section in ("config", "curves", "evaluation", "top-losses", "filters", "featuremaps"):
        assert f'id="{section}"' in text

    seen, console = _render(chromium, out, tmp_path)
    assert console == []
    assert set(seen) == {"phone", "desktop"}
    # curves; confusion, per-class and reliability; 16 top losses; filters; feature maps
    expected_images = 1 + 3 + 16 + 1 + 1
    for name, width in (("phone", 360), ("desktop", 1280)):
        frame = seen[name]
        assert frame["errors"] == [] and frame["viewport"] == width
        assert frame["images"] == frame["decoded"] == expected_images
        assert frame["page_width"] <= width and frame["too_wide"] == 0  # nothing scrolls sideways
    # The rendered top-losses list: misclassified only, highest loss first, as evaluation found.
    cards = seen["desktop"]["cards"]
    assert [(c[0], c[1]) for c in cards] == [(m["true"], m["predicted"]) for m in result["top_losses"]]
    assert all(true != predicted for true, predicted, _, _ in cards)
    losses = [loss for _, _, loss, _ in cards]
    assert losses == sorted(losses, reverse=True) and len(cards) == 16
    assert all(f"true {c[0]}, predicted {c[1]}" in c[3] for c in cards)
