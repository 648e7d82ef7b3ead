"""What --task caption shows once a model is trained: `cnnlab evaluate`'s BLEU-1..4 and
CIDEr-D with greedy decoding and with beam search, a few test captions beside their references, the
attention of the first test scene word by word (show-attend-tell), `cnnlab report`'s section,
and `cnnlab predict`'s caption per image with its attention picture.

BLEU is torchmetrics' corpus BLEU (caption.bleu) over the words of the run's vocabulary:
references are the data set's sentences tokenised as in training, so a word rarer than the
vocabulary's threshold counts as <unk> in them too.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..accel.precision import FP32, Precision
from ..figures import save_figure
from ..webpage import figure, section
from .caption import START_ID, bleu, cider
from .classify_report import preprocessed_files
from .picture_files import output_folder
from .vocabulary import Vocabulary

__all__ = ["evaluation_report", "format_report", "report_sections", "predict",
           "format_predictions"]

BEAM_SIZE = 3
EXAMPLES = 8                     # test scenes drawn with their captions
CAPTIONS_PNG, ATTENTION_PNG = "captions.png", "caption_attention.png"
BATCH = 64


def captioner(model):
    """The Captioner inside test-time augmentation or an average of weights."""
    return model if hasattr(model, "beam_search") else getattr(model, "module", model)


def pixels(inputs: torch.Tensor, preprocess) -> np.ndarray:
    """Normalised model input N x C x H x W -> float N x H x W x 3 in [0, 1] to draw."""
    shape = (1, len(preprocess.mean), 1, 1)
    mean = torch.tensor(preprocess.mean).view(shape)
    std = torch.tensor(preprocess.std).view(shape)
    images = (inputs.float().cpu() * std + mean).clamp(0, 1)
    return images.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, None]:
    """BLEU-1..4 and exact matches of greedy and beam-search captions over `batches`."""
    vocabulary, net = Vocabulary(classes), captioner(model)
    greedy, beam, references = [], [], []
    first = None  # (pixels, beam captions) of the first batch, for the pictures
    model.eval()
    for inputs, targets in batches:
        with torch.inference_mode(), precision.autocast():
            found = model(inputs)
            searched = net.beam_search(inputs, BEAM_SIZE)
        greedy += [" ".join(vocabulary.decode(row)) for row in found.tokens.cpu()]
        beam += [" ".join(vocabulary.decode(row)) for row in searched.tokens.cpu()]
        rows = targets.view(len(targets), -1, net.caption_length).cpu()
        references += [[" ".join(vocabulary.decode(r)) for r in image if r[0] == START_ID]
                       for image in rows]
        if first is None:
            first = (pixels(inputs[:EXAMPLES], preprocess), searched, len(beam))
    report = {"images": len(references), "beam_size": BEAM_SIZE}
    for name, candidates in (("greedy", greedy), ("beam", beam)):
        report.update({f"{name}_{k}": v for k, v in bleu(candidates, references).items()})
        report[f"{name}_cider"] = cider(candidates, references)
        report[f"{name}_exact"] = sum(c in r for c, r in zip(candidates, references)) / max(
            len(references), 1)
    # the headline training reports as test_bleu4 (greedy, as validation decodes)
    report["bleu4"] = report["greedy_bleu4"]
    report["examples"] = [{"beam": b, "greedy": g, "references": r}
                          for b, g, r in list(zip(beam, greedy, references))[:EXAMPLES]]
    report["pictures"] = _pictures(first, beam, vocabulary, run_dir)
    return report, None


def _pictures(first, beam: list[str], vocabulary: Vocabulary, run_dir: Path) -> list[str]:
    if first is None:
        return []
    images, searched, _ = first
    save_figure(captions_figure(images, beam[:len(images)]), run_dir / CAPTIONS_PNG)
    pictures = [str(run_dir / CAPTIONS_PNG)]
    if searched.attention is not None:
        words = vocabulary.decode(searched.tokens[0].cpu())
        save_figure(attention_figure(images[0], words, searched.attention[0].float().cpu()),
                    run_dir / ATTENTION_PNG)
        pictures.append(str(run_dir / ATTENTION_PNG))
    return pictures


def captions_figure(images: np.ndarray, captions: list[str]):
    from matplotlib.figure import Figure
    columns = min(4, len(images))
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(3.2 * columns, 3.0 * rows))
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(_wrapped(caption), fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _wrapped(text: str, width: int = 28) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


def attention_figure(image: np.ndarray, words: list[str], maps: torch.Tensor):
    """The image, then for each word the attention it was written with (step t's weights),
    stretched over the image: where the model looked to say that word."""
    from matplotlib.figure import Figure
    steps = words + ["<end>"]
    panels = len(steps) + 1
    columns = min(panels, 5)
    rows = -(-panels // columns)
    fig = Figure(figsize=(2.3 * columns, 2.5 * rows))
    size = image.shape[:2]
    ax = fig.add_subplot(rows, columns, 1)
    ax.imshow(image, interpolation="nearest")
    ax.set_title(" ".join(words) if len(words) < 6 else "the image", fontsize=8)
    ax.axis("off")
    for t, word in enumerate(steps):
        if t >= len(maps):
            break
        heat = F.interpolate(maps[t][None, None], size=size, mode="bilinear",
                             align_corners=False)[0, 0].numpy()
        ax = fig.add_subplot(rows, columns, t + 2)
        ax.imshow(image, interpolation="nearest")
        ax.imshow(heat, cmap="inferno", alpha=0.6, interpolation="nearest")
        ax.set_title(word, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def format_report(report: dict) -> str:
    scores = lambda name: ", ".join(  # noqa: E731
        [f"BLEU-{n} {report[f'{name}_bleu{n}']:.3f}" for n in range(1, 5)]
        + ([f"CIDEr-D {report[f'{name}_cider']:.3f}"] if report.get(f"{name}_cider")
           is not None else []))
    lines = [f"{report['split']}: {report['images']} images",
             f"greedy:          {scores('greedy')}; exact {report['greedy_exact']:.1%}",
             f"beam search ({report['beam_size']}): {scores('beam')}; "
             f"exact {report['beam_exact']:.1%}"]
    for example in report["examples"][:3]:
        lines.append(f"  \"{example['beam']}\" (a reference: \"{example['references'][0]}\")"
                     if example["references"] else f"  \"{example['beam']}\"")
    if report.get("greedy_cider", 0) is None:
        lines.append("CIDEr-D not computed: pycocoevalcap is not installed (pip install "
                     "'cnnlab[caption]').")
    if report["pictures"]:
        lines.append(f"pictures: {', '.join(report['pictures'])}")
    return "\n".join(lines)


def report_sections(report: dict, details, classes: list[str], run_dir: Path) -> list[str]:
    body = f"<p>{escape(format_report(report))}</p>".replace("\n", "<br>")
    for path, caption in ((CAPTIONS_PNG, "test captions (beam search)"),
                          (ATTENTION_PNG, "where the model looked for each word")):
        if (Path(run_dir) / path).is_file():
            body += figure((Path(run_dir) / path).read_bytes(), caption)
    return [section("Test captions", body, "evaluation")]


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, out_dir: str | None = None, **_) -> dict:
    """A beam-search caption for each readable file; for the attention model also a picture
    of the attention of each word, in `out_dir` (default: a folder `captions` beside the
    first image)."""
    vocabulary, net = Vocabulary(classes), captioner(model)
    inputs, readable, errors = preprocessed_files(preprocess, files)
    out = output_folder(files, out_dir, "captions")
    predictions = []
    for start in range(0, len(inputs), BATCH):
        batch = torch.stack(inputs[start:start + BATCH]).to(device)
        with torch.inference_mode(), precision.autocast():
            found = net.beam_search(batch, BEAM_SIZE)
        images = pixels(batch, preprocess)
        for i, file in enumerate(readable[start:start + BATCH]):
            words = vocabulary.decode(found.tokens[i].cpu())
            item = {"file": str(file), "caption": " ".join(words)}
            if found.attention is not None:
                out.mkdir(parents=True, exist_ok=True)
                path = out / f"{Path(file).stem}_attention.png"
                save_figure(attention_figure(images[i], words, found.attention[i].float().cpu()),
                            path)
                item["attention"] = str(path)
            predictions.append(item)
    return {"predictions": predictions, "errors": errors}


def format_predictions(result: dict) -> str:
    return "\n".join(f"{p['file']}: {p['caption']}"
                     + (f" (attention: {p['attention']})" if "attention" in p else "")
                     for p in result["predictions"])

