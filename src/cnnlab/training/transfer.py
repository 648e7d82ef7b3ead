"""Transfer learning (lectures 001 and 003): re-use a network pretrained on ImageNet.

Replace the output layer with one that produces the right number of outputs, then
- features: 'feature extraction': freeze the network and train only the new output layer,
  'the only viable option for small datasets'. The backbone's batch norms become
  FrozenNorm, so their running statistics never move, although the engine calls
  model.train() each epoch;
- finetune: 'fine tuning': train everything, the pretrained layers (the backbone) at a smaller
  rate (--backbone-lr, default --lr / 10) than the new head, in separate parameter groups;
- scratch: the same architecture, input and budget with random weights: the baseline that
  shows what the pretrained weights are worth.
--unfreeze-after N turns a `features` run into fine-tuning after N epochs: the head settles on
fixed features first, so its random start does not send large gradients into the backbone.
--head-layers N makes the new head N Linear layers (003's 'add new layers and retrain them
only'; models/heads.py): all of them train in every mode, and `features` freezes the rest.

For segmentation the pretrained network becomes the `backbone` of a segmenter (U-Net's
encoder, DeepLabV3's dilated feature extractor): everything outside it (the decoder, ASPP,
the score layers) is the new 'head' that the three modes treat as above.
"""
from __future__ import annotations

from torch import nn

from ..config.train_config import TrainConfig
from ..models import create_model
from ..models.heads import add_hidden_layers, new_head_parameters
from .pretrained import load_backbone, pretrained_model, pretrained_record

BACKBONE_LR_FACTOR = 0.1  # --backbone-lr 0: the backbone at a tenth of the head's rate


def build(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model for `config.transfer`: pretrained with a fresh head (frozen backbone for
    `features`), or the same architecture from scratch."""
    record = pretrained_record(config.pretrained)
    options = {**record.options, **config.model_kwargs}
    if config.transfer == "scratch":  # the same head too: only the starting weights differ
        return add_hidden_layers(create_model(record.name, num_classes=num_classes, **options),
                                 config.head_layers)
    model, _ = pretrained_model(record.name, config.weights_file, **config.model_kwargs)
    model.reset_classifier(num_classes)  # 'replace the output layer' (001)
    add_hidden_layers(model, config.head_layers)  # 'add new layers' (003)
    if config.transfer == "features":
        freeze_backbone(model)
    return model


def pretrained_part(model: nn.Module) -> tuple[str, str] | None:
    """(the submodule an ImageNet classifier's weights fill, the prefix of their keys in the
    classifier's state dict) for a segmenter or detector; None for a classifier. A segmenter's
    `backbone` holds the classifier's keys as they are; a detector's pyramid wraps them in
    `backbone.body` (and the pyramid itself is new)."""
    chosen = getattr(model, "pretrained_part", None)
    if chosen is not None:
        return chosen()
    return ("backbone", "") if isinstance(getattr(model, "backbone", None), nn.Module) else None


def start_backbone(model: nn.Module, config: TrainConfig) -> nn.Module:
    """A segmenter or detector whose backbone starts from --pretrained's ImageNet weights
    (frozen for `features`), or stays random for `scratch`."""
    if config.transfer == "scratch":
        return model
    name, prefix = pretrained_part(model)
    load_backbone(model.get_submodule(name), config.pretrained, config.weights_file, prefix)
    if config.transfer == "features":
        freeze_backbone(model)
    return model


def head_parameter_names(model: nn.Module) -> set[str]:
    """The parameters that start fresh: the class-score layer(s) that reset_classifier
    replaces, or everything outside a segmenter's or detector's pretrained backbone."""
    part = pretrained_part(model)
    if part is not None:
        return {name for name, _ in model.named_parameters()
                if not name.startswith(part[0] + ".")}
    replaced = {f"{layer}.{name}" for layer in model.classifier_names()
                for name, _ in model.get_submodule(layer).named_parameters()}
    return replaced | new_head_parameters(model)  # all of a --head-layers head is new


def _carry(source: nn.Module, target: nn.Module) -> nn.Module:
    """`target` takes `source`'s norm tensors themselves, not copies: the optimiser keeps
    holding the parameters, and whatever was loaded into one module is in the other."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        setattr(target, name, getattr(source, name))  # a Parameter stays a Parameter
    target.register_buffer("num_batches_tracked", source.num_batches_tracked)
    return target


class FrozenNorm(nn.Module):
    """A BatchNorm2d held fixed: the affine map of its own tensors and running statistics,
    whatever model.train() says (the engine calls it every epoch), so the statistics cannot
    move and nothing has to re-assert eval mode. torchvision's FrozenBatchNorm2d computes the
    same (scale = weight / sqrt(var + eps)), but importing torchvision costs seconds.

    Weight and bias stay (frozen) Parameters and num_batches_tracked is kept: parameter
    counts, the optimiser's groups, the order of parameters and buffers that --ema pairs up,
    and the state_dict keys are all a plain model's, so a run saved or checkpointed while
    frozen loads into a freshly built model."""

    def __init__(self, norm: nn.BatchNorm2d):
        super().__init__()
        self.eps, self.momentum = norm.eps, norm.momentum  # momentum: for unfrozen()
        for name in ("running_mean", "running_var"):
            self.register_buffer(name, None)  # so that _carry's tensors become buffers
        _carry(norm, self)

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def unfrozen(self) -> nn.BatchNorm2d:
        norm = nn.BatchNorm2d(self.weight.numel(), eps=self.eps, momentum=self.momentum)
        return _carry(self, norm)


def _replace(model: nn.Module, kind: type, make) -> None:
    """Every `kind` submodule, however deep, replaced in its parent by make(module)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, kind) and (new := make(module)) is not module:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, new)


def freeze_backbone(model: nn.Module) -> None:
    """requires_grad off for everything but the head; the backbone's batch norms frozen."""
    head = head_parameter_names(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name in head
    _replace(model, nn.BatchNorm2d, _frozen)


def _frozen(norm: nn.BatchNorm2d) -> nn.Module:
    # A norm in the head trains; one without affine parameters or running statistics has
    # nothing FrozenBatchNorm2d could hold fixed, and none of the pretrained models has one.
    if norm.weight is None or norm.running_mean is None or norm.weight.requires_grad:
        return norm
    return FrozenNorm(norm)


def unfreeze(model: nn.Module) -> None:
    """Everything trainable again, with plain batch norms that follow model.train()."""
    _replace(model, FrozenNorm, FrozenNorm.unfrozen)
    for parameter in model.parameters():
        parameter.requires_grad = True


def backbone_lr(config: TrainConfig) -> float:
    return config.backbone_lr or config.lr * BACKBONE_LR_FACTOR


def parameter_groups(model: nn.Module, config: TrainConfig):
    """What the optimiser updates. The head comes first, so the logged rate is --lr.

    features: the head alone (the lectures' optimizer over model.fc.parameters()); with
    --unfreeze-after the backbone is a second group from the start: its parameters have no
    gradient while frozen, and torch's optimisers skip those, so unfreezing needs no new
    optimiser and the schedule covers both groups from the first step."""
    if config.pretrained is None or config.transfer == "scratch":
        return model.parameters()
    head_names = head_parameter_names(model)
    head = [p for n, p in model.named_parameters() if n in head_names]
    backbone = [p for n, p in model.named_parameters() if n not in head_names]
    groups = [{"name": "head", "params": head, "lr": config.lr}]
    if config.transfer == "finetune" or config.unfreeze_after:
        groups.append({"name": "backbone", "params": backbone, "lr": backbone_lr(config)})
    return groups


def after_epoch(model: nn.Module, config: TrainConfig, epoch: int) -> bool:
    """Unfreeze the backbone once --unfreeze-after epochs are done; True when it happened."""
    if config.pretrained is None or config.transfer != "features":
        return False
    if config.unfreeze_after and epoch == config.unfreeze_after:
        unfreeze(model)
        return True
    return False


def parameter_counts(model: nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"trainable_parameters": trainable, "frozen_parameters": frozen}


def describe(model: nn.Module, config: TrainConfig) -> str:
    """'4,653,288 parameters: 2,562 trainable, 4,650,726 frozen; features from ...'."""
    counts = parameter_counts(model)
    total = counts["trainable_parameters"] + counts["frozen_parameters"]
    text = (f"{total:,} parameters: {counts['trainable_parameters']:,} trainable, "
            f"{counts['frozen_parameters']:,} frozen")
    if config.pretrained is not None:
        origin = ("random weights" if config.transfer == "scratch"
                  else pretrained_record(config.pretrained).source)
        text += f"; {config.transfer} from {origin}"
    return text
