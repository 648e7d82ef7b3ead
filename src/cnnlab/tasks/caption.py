"""Image captioning: a sentence per image (Vinyals et al. 2015; Xu et al. 2015).

Targets: every image's reference sentences as token ids (vocabulary.py), K references of
L tokens each, flattened to one int64 N x (K * L) tensor per split: the engine's in-memory
batches, checkpoints and exact resume carry it as they carry class labels. The vocabulary is
built from the training split's sentences and becomes the run's classes.

Training: each step teaches one reference per image, drawn at random (torch's generator, which
a checkpoint saves, so a resumed run draws the same ones): the decoder costs as much as the
CNN at these sizes, and all K would cost K times as much. --caption-reference first teaches
always the first instead, for data sets whose first reference is canonical (shapes-captions'
"A above B"): with a random one, the first colour word's target is a coin flip between the two
shapes, so attention learns to look at both and binds neither. The loss is the cross-entropy of
every next token given the true ones before it (teacher forcing), padding ignored; the epoch
reports the share of next tokens predicted right. Validation writes greedy captions and
scores them with corpus BLEU-4 against all references (torchmetrics' BLEUScore); the test
report adds beam search and BLEU-1..3 (caption_report.py).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.catalog import DataSplits, Split
from ..engine.task import Headline
from ..errors import UserError
from ..models import model_info
from ..models.registry import SMALL_IMAGE_SIDE, dense_input_size
from .vocabulary import SPECIALS, Vocabulary, caption_length

PAD_ID, START_ID = SPECIALS.index("<pad>"), SPECIALS.index("<start>")
DEFAULT_BACKBONE = "efficientnet_lite0"  # models/captioning.py's default encoder
REFERENCES = ("random", "first")  # --caption-reference: which one each training step teaches


def bleu(candidates: list[str], references: list[list[str]], orders=(1, 2, 3, 4)) -> dict:
    """Corpus BLEU-n (uniform weights over 1..n-grams, brevity penalty) of sentences given as
    space-separated words, from torchmetrics, the well-kept implementation."""
    try:
        from torchmetrics.text import BLEUScore
    except ImportError:
        raise UserError("captioning's BLEU scores come from torchmetrics, which is not "
                        "installed; install it with pip install 'cnnlab[caption]'.") from None
    if not candidates:
        return {f"bleu{n}": 0.0 for n in orders}
    return {f"bleu{n}": float(BLEUScore(n_gram=n)(candidates, references)) for n in orders}


def cider(candidates: list[str], references: list[list[str]]) -> float | None:
    """Corpus CIDEr-D (Vedantam et al. 2015: n-grams weighted by how rare they are among the
    references, clipped, with a length penalty; x10) as COCO's caption evaluation computes it,
    from pycocoevalcap (its CIDEr is pure Python; its Java tokeniser is not needed, since these
    sentences are lower-case words already). The weights come from these references, so
    compare runs on the same images. None when pycocoevalcap is not installed."""
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        return None
    scored = [(c, r) for c, r in zip(candidates, references) if r]  # it needs a reference
    if not scored:  # pycocoevalcap cannot score an empty set
        return 0.0
    score, _ = Cider().compute_score({i: r for i, (_, r) in enumerate(scored)},
                                     {i: [c] for i, (c, _) in enumerate(scored)})
    return float(score)


def id_sentences(tokens: torch.Tensor) -> list[str]:
    """Token ids (rows, after <start>) as space-separated ids up to <end>: BLEU counts n-grams
    of ids exactly as of words, so evaluation needs no vocabulary."""
    end = SPECIALS.index("<end>")
    out = []
    for row in tokens.tolist():
        row = row[:row.index(end)] if end in row else row
        out.append(" ".join(str(t) for t in row if t not in (PAD_ID, START_ID)))
    return out


def reference_sentences(targets: torch.Tensor, length: int) -> list[list[str]]:
    """N x (K * L) reference ids -> per image, its non-empty references as id sentences."""
    captions = targets.view(len(targets), -1, length).cpu()
    return [[s for s, row in zip(id_sentences(image), image) if row[0] == START_ID]
            for image in captions]


@dataclasses.dataclass
class CaptionEvaluation:
    bleu4: float
    exact: float  # share of captions equal to one of their references

    def metrics(self) -> dict[str, float]:
        return {"bleu4": self.bleu4, "exact": self.exact}


class Gather:
    """Greedy captions and references, as id sentences, for one evaluation pass."""

    def __init__(self):
        self.candidates, self.references = [], []

    def add(self, inputs, outputs, targets: torch.Tensor) -> None:
        self.candidates += id_sentences(outputs.tokens.cpu())
        self.references += reference_sentences(targets, outputs.tokens.shape[1] + 1)

    def result(self) -> CaptionEvaluation:
        exact = sum(c in r for c, r in zip(self.candidates, self.references))
        return CaptionEvaluation(bleu(self.candidates, self.references, (4,))["bleu4"],
                                 exact / max(len(self.candidates), 1))


class Caption:
    name = "caption"
    headline = Headline("bleu4", "bleu4", "{:.3f}")

    def __init__(self, reference: str = "random"):
        if reference not in REFERENCES:
            raise UserError(f"unknown --caption-reference '{reference}'; choose one of: "
                            f"{', '.join(REFERENCES)}.")
        self.reference = reference  # which reference training teaches: random or first
        self.length = None  # tokens per reference, set by targets()

    @classmethod
    def from_config(cls, config) -> "Caption":
        return cls(getattr(config, "caption_reference", "random"))

    def targets(self, splits: DataSplits) -> DataSplits:
        """Sentences -> ids, with the vocabulary of the training sentences as the classes.
        No augmentation: a mirror image would swap "left" and "right"."""
        for part in (splits.train, splits.val, splits.test):
            found = getattr(part, "targets", None)
            if not found or "captions" not in found[0]:
                raise UserError(f"data set {splits.name} has no captions; train --task caption "
                                "on shapes-captions, flickr8k:PATH or coco-captions:PATH.")
        sentences = [t["captions"] for t in splits.train.targets]
        vocabulary = Vocabulary.build(sentences)
        self.length = caption_length(sentences)
        per_image = max(len(t["captions"]) for part in (splits.train, splits.val, splits.test)
                        for t in part.targets)

        def encoded(part: Split) -> Split:
            ids = vocabulary.encode([t["captions"] for t in part.targets], per_image, self.length)
            return Split(part.images, ids.flatten(1))
        return dataclasses.replace(splits, classes=vocabulary.tokens, augment="none",
                                   train=encoded(splits.train), val=encoded(splits.val),
                                   test=encoded(splits.test))

    def model_options(self, info, splits, image_size) -> dict:
        return {"caption_length": self.length}

    def plan_input(self, info, splits, image_size, kwargs: dict):
        """Images at their own size (capped at the design size, as a segmenter's); small ones
        through the backbone's small-input stem, so the feature map keeps cells to attend to."""
        backbone = model_info(kwargs.get("backbone", DEFAULT_BACKBONE))
        if backbone.task != "classify":
            raise UserError(f"the captioner's backbone must be a classification model; "
                            f"{backbone.name} is made for --task {backbone.task}.")
        channels, *floor = backbone.smallest_input_size
        size = dense_input_size(info, image_size) if image_size else info.input_size
        planned = dict(kwargs)
        small = image_size is not None and max(image_size) <= SMALL_IMAGE_SIDE
        if "stem" not in planned and backbone.small_input_size is not None and small:
            planned["stem"] = "small"
        return (3, *(max(s, f) for s, f in zip(size[1:], floor))), planned

    def attach(self, run_dir: Path, main: bool) -> None:
        """RUN/vocabulary.json beside config.json (which holds the same tokens as classes)."""
        config = json.loads((Path(run_dir) / "config.json").read_text())
        if main:
            Vocabulary(config["classes"]).write(
                run_dir, config["model"]["kwargs"].get("caption_length"))

    def train_forward(self, model, inputs: torch.Tensor, targets: torch.Tensor):
        """(logits N x 1 x (L - 1) x vocabulary, the reference each image was taught)."""
        n = len(targets)
        captions = targets.view(n, -1, model_length(model))
        if self.reference == "first":  # every image has a first reference (targets())
            return model(inputs, captions[:, 0]), captions[:, :1]
        present = captions[:, :, 0] == START_ID
        draw = torch.rand(present.shape).to(targets.device)  # the CPU generator: checkpointed
        pick = torch.where(present, draw, -1.0).argmax(dim=1)
        chosen = captions[torch.arange(n, device=targets.device), pick][:, None]
        return model(inputs, chosen.flatten(1)), chosen

    def loss(self, outputs, targets):
        logits, chosen = outputs
        following = chosen[:, :, 1:]
        loss = F.cross_entropy(logits.flatten(0, 2).float(), following.flatten(),
                               ignore_index=PAD_ID)
        return loss, outputs

    def batch_sums(self, outputs, targets) -> dict[str, torch.Tensor]:
        logits, chosen = outputs
        following = chosen[:, :, 1:]
        counted = following != PAD_ID
        right = (logits.detach().argmax(dim=-1) == following) & counted
        return {"right_tokens": right.sum(), "tokens": counted.sum()}

    def epoch_metrics(self, sums: dict, seen: int) -> dict[str, float]:
        return {"token_accuracy": sums["right_tokens"] / max(sums["tokens"], 1)}

    def accumulator(self) -> Gather:
        return Gather()


def model_length(model) -> int:
    """The captioner's tokens per reference, through DistributedDataParallel or an average."""
    inner = getattr(model, "module", model)
    return getattr(inner, "caption_length")
