"""Translation equivariance and invariance (000 'Improve translational invariance'; 001 'add
spatial invariance'; 004 'Translation invariance: the output doesn't change').

Shift an image by k pixels. A stride-1 convolution's feature map shifts by k with it
(equivariance): shifted back, it equals the original map exactly, away from the borders where
padding and the pixels shifted in differ. After layers of total stride S the map can only
shift by k/S positions, so it stays equivariant only for shifts that are multiples of S:
stride and pooling are what break equivariance. Pooling over all positions (the global max
pool before the classifier) throws away where a feature was, so the output barely changes
(invariance); a flatten into a linear layer keeps the positions and the prediction moves
with the digit. Measured layer by layer on one digit, and over a test set for a trained
network.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .arithmetic import whole
from .claims_data import placed_digits, room
from .claims_fit import fit, one_thread, parse_epochs_scale, predict, small_cnn

WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def shift_image(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved dy rows down and dx columns right; what enters at the edge is 0."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _geometry(layer, start: int, jump: int, rf: int) -> tuple[int, int, int]:
    """(start, jump, receptive field) after `layer`: where output 0's window starts in the
    input, how far apart neighbouring outputs' windows are, and how wide each is."""
    if not isinstance(layer, WINDOWED):
        return start, jump, rf
    pair = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731 -- square layers only here
    k, s, p = pair(layer.kernel_size), pair(layer.stride), pair(layer.padding)
    d = pair(getattr(layer, "dilation", 1))
    return start - p * jump, jump * s, rf + d * (k - 1) * jump


def _inside(n_out: int, start: int, jump: int, rf: int, low: int, high: int) -> torch.Tensor:
    """Output positions whose input window lies within [low, high)."""
    first = start + jump * torch.arange(n_out)
    return (first >= low) & (first + rf <= high)


def _compare(base: torch.Tensor, moved: torch.Tensor, k: int, geometry, n: int):
    """f(shift x)[u] against f(x)[u - k/S], over the positions u whose window lies inside the
    part of the shifted image that is x moved (no padding, no zeros shifted in) and whose
    partner u - k/S is a real position: (largest |difference|, positions compared)."""
    start, jump, rf = geometry
    step = round(k / jump)
    width, height = base.shape[-1], base.shape[-2]
    cols = _inside(width, start, jump, rf, max(0, k), min(n, n + k)).nonzero().flatten()
    cols = cols[(cols - step >= 0) & (cols - step < width)]
    partner_ok = _inside(width, start, jump, rf, 0, n)[cols - step]
    cols = cols[partner_ok]
    rows = _inside(height, start, jump, rf, 0, n).nonzero().flatten()
    if not len(cols) or not len(rows):
        return float("nan"), 0
    diff = moved[:, :, rows][:, :, :, cols] - base[:, :, rows][:, :, :, cols - step]
    return float(diff.abs().max()), len(cols) * len(rows)


def layer_errors(model: nn.Sequential, image: torch.Tensor, shifts: list[int]) -> list[dict]:
    """For every layer up to the global pooling, per (horizontal) shift k: the largest
    |f(shift x) - shift(f(x))| away from the borders, and how much f(shift x) differs from
    f(x) without shifting back. In float64, on a copy of the model."""
    import copy
    model = copy.deepcopy(model).double().eval()
    base = image.double()[None]
    n = base.shape[-1]
    geometry, rows = (0, 1, 1), []
    with torch.no_grad():
        outputs = {k: shift_image(base, 0, k) for k in shifts}
        for index, layer in enumerate(model):
            if isinstance(layer, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)):
                break
            geometry = _geometry(layer, *geometry)
            base = layer(base)
            outputs = {k: layer(v) for k, v in outputs.items()}
            scale = float(base.abs().max()) or 1.0
            row = {"index": index, "layer": type(layer).__name__, "stride": geometry[1],
                   "receptive_field": geometry[2], "shape": list(base.shape[1:]), "shifts": [],
                   "maps": {"original": base[0, 0], **{k: v[0, 0] for k, v in outputs.items()}}}
            for k, moved in outputs.items():
                error, count = _compare(base, moved, k, geometry, n)
                row["shifts"].append({"shift": k, "whole_positions": k % geometry[1] == 0,
                                      "map_shift": round(k / geometry[1]), "positions": count,
                                      "max_error": error, "relative_error": error / scale,
                                      "change_unshifted": float((moved - base).abs().max()) / scale})
            rows.append(row)
    return rows


# The per-layer view puts the digit on a wider canvas than training's: the network is fully
# convolutional up to its global pooling, and deep layers (receptive field 18) need room for
# positions that neither the padding nor the shifted-in zeros reach.
VIEW_CANVAS = 40


def prediction_stability(model: nn.Module, data, distances: list[int], seed: int) -> list[dict]:
    """Per distance moved: test accuracy, and the share of digits whose predicted class is the
    one predicted for the centred digit."""
    centred = predict(model, data.shifted(data.test, 0, seed))
    rows = []
    for k in distances:
        answers = predict(model, data.shifted(data.test, k, seed))
        rows.append({"shift": k, "accuracy": float((answers == data.test_labels).double().mean()),
                     "same_prediction": float((answers == centred).double().mean())})
    return rows


def _shift_list(text) -> list[int]:
    values = [whole(v, "a shift") for v in str(text).split(",") if v.strip()]
    if not values or min(values) < 1:
        raise UserError(f"--shifts takes whole numbers of pixels from 1, e.g. 1,2,4; got '{text}'.")
    return sorted(set(values))


def explain_shift(shifts="1,2,3,4", canvas="24", train_shift="2", epochs_scale="1", seed="0",
                  out=None, model=None, model_name=None) -> dict:
    """`cnnlab explain shift`: equivariance layer by layer, invariance of a trained network.
    `model` (an nn.Sequential of image layers, e.g. from a run) replaces the trained one for
    the per-layer view; without it a small CNN is trained on placed digits in seconds."""
    ks, side = _shift_list(shifts), whole(canvas, "canvas")
    jitter, seed, scale = whole(train_shift, "train shift"), whole(seed, "seed"), parse_epochs_scale(epochs_scale)
    if side % 4 or side < 12:
        raise UserError("the canvas side must be a multiple of 4 from 12 (the CNN halves it twice).")
    if not 0 <= jitter <= room(side):
        raise UserError(f"--train-shift must be from 0 to {room(side)} on a {side}-pixel canvas.")
    data = placed_digits(side, seed)
    train = data.jittered(data.train, jitter, seed + 1)
    networks = {}
    for name, pooled in (("global max pool", True), ("flatten + linear", False)):
        net = small_cnn(global_pool=pooled, canvas=side)
        fit(net, train, data.train_labels, max(1, round(8 * scale)), 5e-3, seed=seed)
        networks[name] = net
    distances = list(range(data.room + 1))
    view = placed_digits(VIEW_CANVAS, seed)
    image = view.place(view.test[:1], [(0, 0)])[0]
    with one_thread():
        layers = layer_errors(model if model is not None else networks["global max pool"], image, ks)
    result = {"shifts": ks, "canvas": side, "train_shift": jitter, "view_canvas": VIEW_CANVAS,
              "model": model_name or "small CNN trained here (3 convolutions, 2 max pools, global max pool)",
              "layers": [{k: v for k, v in row.items() if k != "maps"} for row in layers],
              "stride_1_max_error": max(s["max_error"] for row in layers if row["stride"] == 1
                                        for s in row["shifts"]),
              "invariance": {name: prediction_stability(net, data, distances, seed + 2)
                             for name, net in networks.items()}, "out": None}
    if out:
        result["out"] = _picture(layers, ks, out)
    return result


def _picture(layers: list[dict], shifts: list[int], path: str) -> str:
    from .claims_figures import save_panels
    k = 2 if 2 in shifts else shifts[0]  # 2 shows both: exact until the second pool, then not
    rows = []
    for row in layers:
        if row["layer"] == "BatchNorm2d":
            continue
        stride = row["stride"]
        step = round(k / stride)
        back = shift_image(row["maps"][k], 0, -step)
        name = f"{row['index']} {row['layer']} (stride {stride})"
        rows.append([(f"{name}: f(x)", row["maps"]["original"].numpy()),
                     (f"f(x shifted {k})", row["maps"][k].numpy()),
                     (f"shifted back {step} minus f(x)", (back - row["maps"]["original"]).numpy())])
    return save_panels(rows, path, f"feature maps (channel 0) of a digit shifted {k} pixels right")


def format_shift(result: dict) -> str:
    ks = result["shifts"]
    lines = [f"{result['model']}; one digit on a {result['view_canvas']}x{result['view_canvas']} "
             f"canvas shifted right by {', '.join(map(str, ks))} pixels.",
             "equivariance: largest |f(shift x) - shift(f(x))| away from the borders, as a share of "
             "the map's largest value ('~' where the shift is not a whole number of map positions):",
             f"  {'layer':<16} {'stride':>6} {'field':>5}  " + "  ".join(f"k={k:<6}" for k in ks)]
    for row in result["layers"]:
        cells = [("" if s["whole_positions"] else "~") + f"{s['relative_error']:.2g}" for s in row["shifts"]]
        lines.append(f"  {row['index']:>2} {row['layer']:<13} {row['stride']:>6} "
                     f"{row['receptive_field']:>5}  " + "  ".join(f"{c:<8}" for c in cells))
    lines.append(f"stride-1 layers: largest error {result['stride_1_max_error']:.3g} (exact); after "
                 "pooling of stride S only shifts that are multiples of S stay exact")
    lines.append(f"invariance of a trained network (trained on {result['canvas']}x{result['canvas']} "
                 f"digits moved up to {result['train_shift']} pixels): accuracy / same prediction as "
                 "centred, by pixels moved")
    for name, rows in result["invariance"].items():
        lines.append(f"  {name:<17} " + "  ".join(f"{r['shift']}: {r['accuracy']:.2f}/{r['same_prediction']:.2f}"
                                                 for r in rows))
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)
