"""What super-resolution shows once a model is trained: `cnnlab evaluate`'s PSNR and SSIM
beside bicubic upscaling's, with a sheet of test tiles (bicubic | cnnlab | original);
`cnnlab report`'s section; `cnnlab predict`'s upscaled image and sheet per image file.
"""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..accel.precision import FP32, Precision
from ..engine.loop import evaluate
from ..figures import figure_bytes, save_figure
from ..models.superres import bicubic
from ..webpage import data_url, figure, image_png, section, table
from .image_quality import psnr_of, quantised, rgb, squared_errors, ycbcr
from .picture_files import output_folder, readable, write_png
from .superres import Quality, SuperRes

SHEET = "superres_sheet.png"
SHEET_COUNT = 4  # test tiles shown: those bicubic gets most wrong, where detail is
TILE, MARGIN = 256, 12  # predict upscales big images in tiles of low-resolution pixels, with
# a margin wider than any model's reach (FSRCNN's: 11 pixels), so the seams do not show
CROP = 64  # low-resolution pixels on a side in predict's sheet


def scale_of(model) -> int:
    return getattr(model, "scale", None) or model.model.scale  # through a wrapper (TTA)


class WithSheet(Quality):
    """The evaluation, also keeping the SHEET_COUNT images bicubic upscales worst."""

    def __init__(self, scale: int):
        super().__init__(scale)
        self.kept, self.seen = [], 0

    def add(self, inputs, outputs, high) -> None:
        super().add(inputs, outputs, high)
        ours, baseline, truth = self.measured(inputs, outputs, high)
        errors = squared_errors(baseline, truth).tolist()  # one sync per batch
        ours_errors = squared_errors(ours, truth).tolist()
        for i, error in enumerate(errors):
            self.kept.append((-error, self.seen + i, baseline[i].cpu(), ours[i].cpu(),
                              truth[i].cpu(), error, ours_errors[i]))
        self.kept = sorted(self.kept, key=lambda k: k[:2])[:SHEET_COUNT]
        self.seen += len(high)

    def pictures(self) -> list[dict]:
        pixels = lambda t: t.numel()  # noqa: E731
        return [{"index": index, "bicubic": b, "ours": o, "original": t,
                 "bicubic_mse": be / pixels(t), "mse": oe / pixels(t)}
                for _, index, b, o, t, be, oe in self.kept]


def _db(mse: float) -> str:
    return f"{psnr_of(mse, 1):.1f} dB"


def sheet_figure(kept: list[dict], scale: int) -> Figure:
    """Each kept test image in a row: bicubic | cnnlab | original, with the PSNR of each."""
    rows = max(len(kept), 1)
    fig = Figure(figsize=(6.6, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False)
    for row, item in enumerate(kept):
        for column, (key, label) in enumerate((
                ("bicubic", f"#{item['index']} bicubic {_db(item['bicubic_mse'])}"),
                ("ours", f"cnnlab {_db(item['mse'])}"), ("original", "original"))):
            axes[row][column].imshow(item[key][0].numpy(), cmap="gray", vmin=0, vmax=255,
                                     interpolation="nearest")
            axes[row][column].set_title(label, fontsize=8)
    for ax in axes.flatten():
        ax.axis("off")
    fig.suptitle(f"x{scale} on held-out test images (luminance; the tiles bicubic gets most "
                 "wrong)", fontsize=9)
    return fig


def evaluation_report(model, batches, classes: list[str], preprocess, run_dir: Path,
                      precision: Precision = FP32) -> tuple[dict, list[dict]]:
    scale = scale_of(model)
    gather = WithSheet(scale)
    result = evaluate(model, batches, SuperRes(scale), precision, accumulator=gather)
    kept = gather.pictures()
    save_figure(sheet_figure(kept, scale), run_dir / SHEET)
    return {"images": result.images, "scale": scale, "loss": result.loss,
            "psnr": result.psnr, "ssim": result.ssim, "bicubic_psnr": result.bicubic_psnr,
            "bicubic_ssim": result.bicubic_ssim, "gain_db": result.psnr - result.bicubic_psnr,
            "pictures": [str(run_dir / SHEET)]}, kept


def format_report(report: dict) -> str:
    return "\n".join([
        f"{report['split']} x{report['scale']} on {report['images']} images (luminance, border "
        f"of {report['scale']} cropped): {report['gain_db']:+.2f} dB over bicubic", "",
        "            PSNR      SSIM",
        f"bicubic  {report['bicubic_psnr']:6.2f} dB  {report['bicubic_ssim']:.4f}",
        f"cnnlab   {report['psnr']:6.2f} dB  {report['ssim']:.4f}", "",
        f"pictures: {', '.join(report['pictures'])}"])


def report_sections(report: dict, kept: list[dict], classes: list[str],
                    run_dir: Path) -> list[str]:
    rows = [("bicubic", f"{report['bicubic_psnr']:.2f} dB", f"{report['bicubic_ssim']:.4f}"),
            ("cnnlab", f"{report['psnr']:.2f} dB", f"{report['ssim']:.4f}")]
    body = (f"<p>x{report['scale']} on {report['images']} test images: test PSNR "
            f"<b>{report['psnr']:.2f} dB</b>, {report['gain_db']:+.2f} dB over bicubic "
            "upscaling of the same input (luminance, a border of "
            f"{report['scale']} pixels cropped).</p>"
            + table(("upscaling", "PSNR", "SSIM"), rows)
            + figure(figure_bytes(sheet_figure(kept, report["scale"])),
                     "bicubic | cnnlab | original on the test tiles bicubic gets most wrong"))
    return [section("Test evaluation", body, "evaluation")]


@torch.inference_mode()
def upscale(model, y: torch.Tensor, scale: int, precision: Precision = FP32) -> torch.Tensor:
    """1 x 1 x H x W model input -> the model's 1 x 1 x sH x sW output, TILE by TILE with a
    MARGIN of context around each (whole, for images up to TILE)."""
    height, width = y.shape[-2:]
    out = torch.zeros(1, 1, height * scale, width * scale, device=y.device)
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            t0, l0 = max(top - MARGIN, 0), max(left - MARGIN, 0)
            piece = y[..., t0:min(top + TILE + MARGIN, height), l0:min(left + TILE + MARGIN, width)]
            with precision.autocast():
                done = model(piece).float()
            h, w = min(TILE, height - top), min(TILE, width - left)
            out[..., top * scale:(top + h) * scale, left * scale:(left + w) * scale] = done[
                ..., (top - t0) * scale:(top - t0 + h) * scale,
                (left - l0) * scale:(left - l0 + w) * scale]
    return out


def _centre(image: torch.Tensor, side: int) -> torch.Tensor:
    top, left = (max((s - side) // 2, 0) for s in image.shape[-2:])
    return image[..., top:top + side, left:left + side]


def predict_sheet(image: torch.Tensor, smooth: torch.Tensor, ours: torch.Tensor,
                  scale: int) -> Figure:
    """The image's centre: its own pixels (each shown as a scale x scale block) | bicubic |
    cnnlab, all uint8 C x H x W."""
    given = _centre(image, CROP).repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    for ax, (picture, label) in zip(fig.subplots(1, 3), (
            (given, "input"), (_centre(smooth, CROP * scale), "bicubic"),
            (_centre(ours, CROP * scale), "cnnlab"))):
        shown = picture.permute(1, 2, 0).numpy()
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0,
                  vmax=255, interpolation="nearest")
        ax.set_title(f"{label} (x{scale})" if label != "input" else label, fontsize=9)
        ax.axis("off")
    return fig


def _as_image(ycc: torch.Tensor, grey: bool) -> torch.Tensor:
    """Y, Cb, Cr floats (3 x H x W) -> uint8 (1 channel for a grey image, else RGB)."""
    pixels = rgb(ycc)
    return (pixels[:1] if grey else pixels).round().clamp(0, 255).to(torch.uint8)


def predict(model, preprocess, classes: list[str], files: list[str], device,
            precision: Precision = FP32, out_dir: str | None = None, **_) -> dict:
    """For each readable image file: the image `scale` times larger (the model upscales
    the luminance, bicubic the colour, as the papers do) and a sheet of its centre (input |
    bicubic | cnnlab); in `out_dir` (default: a folder `upscaled` beside the first image)."""
    scale = scale_of(model)
    out = output_folder(files, out_dir, "upscaled")
    predictions, errors = [], []
    for file, image in readable(files, errors):
        luma = upscale(model, luma_input(image, preprocess)[None].to(device), scale, precision)
        ours, smooth = upscaled_images(image, luma[0], scale)
        out.mkdir(parents=True, exist_ok=True)
        stem = Path(file).stem
        upscaled, sheet = out / f"{stem}_x{scale}.png", out / f"{stem}_sheet.png"
        write_png(upscaled, ours.permute(1, 2, 0).squeeze(-1).numpy())
        save_figure(predict_sheet(image[:3], smooth, ours, scale), sheet)
        predictions.append({"file": str(file), "upscaled": str(upscaled), "sheet": str(sheet),
                            "scale": scale, "size": [int(image.shape[-1]), int(image.shape[-2])],
                            "upscaled_size": [int(ours.shape[-1]), int(ours.shape[-2])]})
    return {"predictions": predictions, "errors": errors}


def _ycbcr_of(image: torch.Tensor) -> torch.Tensor:
    return ycbcr(image[:3] if image.shape[0] != 1 else image.expand(3, -1, -1))


def luma_input(image: torch.Tensor, preprocess) -> torch.Tensor:
    """uint8 C x H x W -> the model's 1 x H x W input: the luminance, normalised (the
    papers upscale only Y; the colour is left to bicubic)."""
    y = _ycbcr_of(image)[:1].round().clamp(0, 255).to(torch.uint8)
    return preprocess.normalise(y[None])[0]


def upscaled_images(image: torch.Tensor, luma: torch.Tensor,
                    scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's 1 x sH x sW luminance for `image` -> (cnnlab's upscaled image, bicubic's),
    uint8 with the image's channels."""
    grey = image.shape[0] == 1
    colour = bicubic(_ycbcr_of(image)[None], scale)[0]
    ours = _as_image(torch.cat([quantised(luma[None].float())[0].cpu(), colour[1:]]), grey)
    return ours, _as_image(colour, grey)


def image_answer(image: torch.Tensor, luma: torch.Tensor, scale: int) -> dict:
    """predict's answer for one decoded image and the model's upscaled luminance of it, the
    upscaled image and the sheet inline as PNG data: URLs (what `cnnlab serve` sends back)."""
    ours, smooth = upscaled_images(image, luma, scale)
    return {"upscaled": data_url(image_png(ours)),
            "sheet": data_url(figure_bytes(predict_sheet(image[:3], smooth, ours, scale))),
            "scale": scale, "size": [int(image.shape[-1]), int(image.shape[-2])],
            "upscaled_size": [int(ours.shape[-1]), int(ours.shape[-2])]}


def format_predictions(result: dict) -> str:
    return "\n".join(
        f"{p['file']}: {p['size'][0]}x{p['size'][1]} -> {p['upscaled_size'][0]}x"
        f"{p['upscaled_size'][1]} in {p['upscaled']}; sheet {p['sheet']}"
        for p in result["predictions"])

