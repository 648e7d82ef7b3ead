"""What each task answers over HTTP: the same JSON as `cnnlab predict RUN --json` for that
task, with every picture inline as a PNG data: URL instead of a file path.

A task family here is three steps, each run where it costs least:
    prepare  (a decode thread)  upload bytes -> the decoded picture and the model's input
    forward  (the model thread) a list of inputs -> one output each, in as few forward
                                passes as the model allows (the batcher hands it a batch)
    answer   (a decode thread)  the picture and its output -> predict's fields for the file
The pictures and numbers come from the tasks' own functions (tasks/*_report.py), so a served
answer and `cnnlab predict`'s cannot drift apart.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .limits import Refused, decode_upload


@dataclass
class Prepared:
    name: str              # the file's name in the answer
    picture: torch.Tensor  # uint8, as decoded (a clip: T x C x H x W): what answers draw on
    input: torch.Tensor    # the model's input for it, as training fed it


def _stacked(served, inputs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(inputs).to(served.device)


class Answers:
    """Classification: the top-k classes of each image."""
    needs_image = True   # False: answers a request with no image too (a GAN draws new ones)
    draws = False        # its answers hold pictures: drawn in a decode thread, not the loop

    def example(self, served) -> torch.Tensor:
        """An input of the model's shape, for the warm-up."""
        return torch.zeros(served.preprocess.channels, *served.preprocess.size)

    def decode(self, served, name: str, data: bytes, max_pixels: int) -> torch.Tensor:
        return decode_upload(data, name, max_pixels)

    def prepare(self, served, name: str, data: bytes, max_pixels: int) -> Prepared:
        picture = self.decode(served, name, data, max_pixels)
        return Prepared(name, picture, self.model_input(served, picture))

    def model_input(self, served, picture: torch.Tensor) -> torch.Tensor:
        return served.preprocess(picture)

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        with torch.inference_mode(), served.precision.autocast():
            return list(served.model(_stacked(served, inputs)).float().softmax(dim=1).cpu())

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        return {"top": served.top(output, options["top_k"])}

    # more(served, result, prepared) -> dict, where a task has it: keys the whole answer
    # adds beside the predictions (embed's verification), computed in the model thread
    more = None


class Video(Answers):
    """A video file's top-k classes, read as a clip of as many frames as the run trained on
    (PyAV, as `cnnlab predict` reads it)."""

    def example(self, served) -> torch.Tensor:
        return torch.zeros(served.extra["frames"], served.preprocess.channels,
                           *served.preprocess.size)

    def decode(self, served, name: str, data: bytes, max_pixels: int) -> torch.Tensor:
        from ..data.video_files import read_any_clip
        from ..errors import UserError
        if not data:
            raise Refused(422, f"{name} is empty.")
        # PyAV reads files: the upload is one in the service's temporary folder for as long
        # as it takes to decode, and never longer.
        suffix = Path(name).suffix[:9]  # kept where plain: some containers are known by it
        handle, path = tempfile.mkstemp(prefix="cnnlab-serve-",
                                        suffix=suffix if suffix[1:].isalnum() else "")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            return read_any_clip(path, served.extra["frames"], tuple(served.preprocess.size))
        except UserError:
            raise Refused(415, f"{name} is not a video file PyAV can read.") from None
        finally:
            os.unlink(path)

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        return {"frames": served.extra["frames"], "top": served.top(output, options["top_k"])}


class Segment(Answers):
    """A class for every pixel: the mask and the overlay at the image's own size."""
    draws = True

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        with torch.inference_mode(), served.precision.autocast():
            return list(served.model(_stacked(served, inputs)).float().cpu())

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        from ..tasks.segment_report import image_answer
        return image_answer(prepared.picture, output, served.classes)


class Detect(Answers):
    """Boxes, classes, scores (and masks) above ?score_threshold=, drawn on the image."""
    draws = True

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        with torch.inference_mode(), served.precision.autocast():
            found = served.model(_stacked(served, inputs))
        return [{k: v.cpu() for k, v in f.items()} for f in found]

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        from ..tasks.detect_report import image_answer
        return image_answer(prepared.picture, output, tuple(prepared.input.shape[-2:]),
                            served.classes, options["score_threshold"])


class SuperRes(Answers):
    """The image `scale` times larger: images of one size share a forward pass."""
    draws = True

    def example(self, served) -> torch.Tensor:
        return torch.zeros(1, *served.preprocess.size)

    def model_input(self, served, picture: torch.Tensor) -> torch.Tensor:
        from ..tasks.superres_report import luma_input
        return luma_input(picture, served.preprocess)

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        from ..tasks.superres_report import TILE, upscale
        outputs: list[Any] = [None] * len(inputs)
        for shape in dict.fromkeys(tuple(x.shape) for x in inputs):
            same = [i for i, x in enumerate(inputs) if tuple(x.shape) == shape]
            if max(shape[-2:]) <= TILE:  # whole: one pass for all of this size
                with torch.inference_mode(), served.precision.autocast():
                    done = served.model(_stacked(served, [inputs[i] for i in same])).float()
                pieces = list(done.cpu())
            else:  # tile by tile, as predict does
                pieces = [upscale(served.model, inputs[i][None].to(served.device),
                                  served.extra["scale"], served.precision)[0].cpu()
                          for i in same]
            for i, piece in zip(same, pieces):
                outputs[i] = piece
        return outputs

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        from ..tasks.superres_report import image_answer
        return image_answer(prepared.picture, output, served.extra["scale"])


class Embed(Answers):
    """The embedding of each image; with two images, `cnnlab verify`'s answer too."""

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        with torch.inference_mode(), served.precision.autocast():
            return list(served.model(_stacked(served, inputs)).float().cpu())

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        return {"embedding": output.tolist()}

    def more(self, served, result: dict, prepared: list[Prepared]) -> dict:
        threshold = served.extra.get("threshold")
        if len(result["predictions"]) != 2 or threshold is None:
            return {}
        from ..tasks.embed_report import verify_pair
        from ..webpage import image_png
        # verify_pair reads files: the two images, decoded already, go to the service's
        # temporary folder as PNGs (lossless: the same pixels) for as long as it takes.
        folder = Path(tempfile.mkdtemp(prefix="cnnlab-serve-"))
        try:
            files = []
            for i, p in enumerate(prepared):
                files.append(folder / f"{i}.png")
                files[-1].write_bytes(image_png(p.picture))
            verdict = verify_pair(served.model, served.preprocess, [str(f) for f in files],
                                  served.device, threshold, served.precision)
        finally:
            for file in folder.iterdir():
                file.unlink()
            folder.rmdir()
        return {"verify": {**verdict, "files": [p.name for p in prepared]}}


class Caption(Answers):
    """A beam-search sentence per image; for the attention model, where it looked for each
    word, drawn."""
    draws = True

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        from ..tasks.caption_report import BEAM_SIZE, captioner
        with torch.inference_mode(), served.precision.autocast():
            found = captioner(served.model).beam_search(_stacked(served, inputs), BEAM_SIZE)
        attention = found.attention.float().cpu() if found.attention is not None else None
        return [(found.tokens[i].cpu(), None if attention is None else attention[i])
                for i in range(len(inputs))]

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        from ..figures import figure_bytes
        from ..tasks.caption_report import attention_figure, pixels
        from ..tasks.vocabulary import Vocabulary
        from ..webpage import data_url
        tokens, attention = output
        words = Vocabulary(served.classes).decode(tokens)
        item = {"caption": " ".join(words)}
        if attention is not None:
            image = pixels(prepared.input[None], served.preprocess)[0]
            item["attention"] = data_url(figure_bytes(attention_figure(image, words, attention)))
        return item


class Gan(Answers):
    """With images: the discriminator's probability that each is real. With none: new
    images (?count=, from the same noise every time) and their grid."""
    needs_image = False

    def forward(self, served, inputs: list[torch.Tensor]) -> list:
        with torch.inference_mode(), served.precision.autocast():
            logits = served.model.discriminator(_stacked(served, inputs)).float()
        return list(torch.sigmoid(logits).reshape(len(inputs), -1)[:, 0].cpu())

    def answer(self, served, prepared: Prepared, output, options: dict) -> dict:
        return {"real": float(output)}

    def generate(self, served, count: int) -> dict:
        from ..tasks.gan_report import generated_answer
        return generated_answer(served.model, count, served.precision)


FAMILIES = {"classify": Answers, "video": Video, "segment": Segment, "detect": Detect,
            "instance": Detect, "superres": SuperRes, "embed": Embed, "caption": Caption,
            "gan": Gan}
