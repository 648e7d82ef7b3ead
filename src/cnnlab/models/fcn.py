"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): a classifier turned into a
segmenter by scoring every position of its last feature map and upsampling the scores.

head="fcn8s", the paper's skip architecture (its figure 3), on a ResNet instead of VGG16:
layer2, layer3 and layer4 end at strides 8, 16 and 32, where VGG's pool3, pool4 and pool5 do.

    score_fr      1x1 convolution: a score per class at every stride-32 position
    upscore2      2x transposed convolution (learned upsampling) to stride 16,
                  plus score_pool4, a 1x1 score layer on layer3 (the first skip)
    upscore_pool4 2x transposed convolution to stride 8, plus score_pool3 on layer2
    upscore8      bilinear upsampling to the input's size

As in the paper the transposed convolutions start as bilinear interpolation and learn from
there, the last upsampling stays bilinear, and the skip score layers start at zero, so
training begins as FCN-32s and learns how much the finer layers add (sec. 4.2).

head="torchvision" is torchvision's fcn_resnet50 layout, which is not FCN-8s: layer3 and
layer4 trade their stride for dilation (output stride 8, no skips needed), then FCNHead
(3x3 convolution, batch norm, ReLU, dropout, 1x1 scores) and bilinear upsampling. Module
names are torchvision's (backbone.layer4..., classifier.4...), so its fcn_resnet50/101
checkpoints load with --weights-file (options head=torchvision, and aux=True to keep their
auxiliary head; with aux=False its weights are skipped).

aux=True adds torchvision's auxiliary FCNHead on layer3: in training mode the model then
returns AuxOutputs (main logits, the aux head's logits, weight 0.5 as torchvision's
reference training uses); in evaluation mode just the logits.

Small images (stem="small", 32x32 shapes): the ResNet's small stem has no stride-4 entry, so
layer4 is at stride 8 already; torchvision's layout then needs no dilation and FCN-8s fuses
at strides 2, 4 and 8.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, unknown_name
from . import resnet as resnets
from .base import IMAGENET_MEAN, IMAGENET_STD, AuxOutputs
from .registry import register_model

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = (*RESNETS, "efficientnet_lite0")
AUX_WEIGHT = 0.5  # torchvision's references/segmentation/train.py: loss = out + 0.5 * aux


class ResNetBackbone(nn.Module):
    """A ResNet without its classifier (avgpool, fc), returning each stage's feature maps.

    It holds the modules torchvision's IntermediateLayerGetter keeps of a ResNet, under the
    same names, so a segmentation checkpoint's backbone.* keys load unchanged."""
    # SegmentationModel's names: the classifier reads out_stage, an auxiliary head aux_stage.
    out_stage, aux_stage = "layer4", "layer3"

    def __init__(self, name: str, in_channels: int = 3, stem: str = "imagenet",
                 dilate: bool = False):
        super().__init__()
        if name not in RESNETS:
            raise unknown_name("backbone", name, RESNETS)
        resnet = getattr(resnets, name)(num_classes=1, in_channels=in_channels, stem=stem,
                                        replace_stride_with_dilation=(False, dilate, dilate))
        for part in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(part, getattr(resnet, part))
        # output channels per stage: 64, 128, 256, 512 times the block's expansion
        self.channels = {f"layer{i}": 64 * 2 ** (i - 1) * resnet.layer1[0].expansion
                         for i in range(1, 5)}

    def layer_name(self, stage: str) -> str:
        return f"backbone.{stage}"  # the module that outputs `stage`, from the model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = {}
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = features[name] = getattr(self, name)(x)
        return features


def make_backbone(name: str, in_channels: int, stem: str, dilate: bool) -> nn.Module:
    """A ResNet's stages, or EfficientNet-Lite0's (output stride 8 where `dilate`; its
    pretrained weights need the ImageNet stem, so it has no other)."""
    if name not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES)
    if name == "efficientnet_lite0":
        if stem != "imagenet":
            raise UserError("the efficientnet_lite0 backbone has only the ImageNet stem; drop "
                            f"stem={stem}.")
        from .lite_encoder import Lite0Encoder
        return Lite0Encoder(in_channels, output_stride=8 if dilate else 32)
    return ResNetBackbone(name, in_channels, stem, dilate)


class FCNHead(nn.Sequential):
    """torchvision's FCN head: 3x3 convolution to a quarter of the channels, batch norm,
    ReLU, dropout 0.1, 1x1 convolution to a score per class (indices 0..4 are its keys)."""
    score_layers = ("4",)

    def __init__(self, in_channels: int, num_classes: int):
        inner = in_channels // 4
        super().__init__(nn.Conv2d(in_channels, inner, 3, padding=1, bias=False),
                         nn.BatchNorm2d(inner), nn.ReLU(), nn.Dropout(0.1),
                         nn.Conv2d(inner, num_classes, 1))


def bilinear_upsampling(channels: int) -> nn.ConvTranspose2d:
    """2x learned upsampling, starting as bilinear interpolation of each channel on its own.

    Kernel 4, stride 2, padding 1 doubles the size exactly; its bilinear kernel is the outer
    product of (1/4, 3/4, 3/4, 1/4), placed on the diagonal (channel c from channel c)."""
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        up.weight.zero_()
        for c in range(channels):
            up.weight[c, c] = torch.outer(taps, taps)
    return up


def crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """x's top-left part of like's size: stride-2 layers round odd sizes up, so a 2x
    upsampling can overshoot by a pixel."""
    return x[..., :like.shape[-2], :like.shape[-1]]


class FCN8sHead(nn.Module):
    """The scores of FCN-8s from layer2/3/4 (pool3/4/5), at layer2's resolution.

    Layer names are the paper's Caffe model's (score_fr, upscore2, score_pool4 ...)."""
    score_layers = ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3")
    takes_all_stages = True  # it reads layer2 and layer3 as well as layer4

    def __init__(self, channels: dict[str, int], num_classes: int):
        super().__init__()
        self.score_fr = nn.Conv2d(channels["layer4"], num_classes, 1)
        self.upscore2 = bilinear_upsampling(num_classes)
        self.score_pool4 = nn.Conv2d(channels["layer3"], num_classes, 1)
        self.upscore_pool4 = bilinear_upsampling(num_classes)
        self.score_pool3 = nn.Conv2d(channels["layer2"], num_classes, 1)
        for skip in (self.score_pool4, self.score_pool3):  # start as FCN-32s (sec. 4.2)
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        pool3, pool4, pool5 = features["layer2"], features["layer3"], features["layer4"]
        x = crop_to(self.upscore2(self.score_fr(pool5)), pool4) + self.score_pool4(pool4)
        return crop_to(self.upscore_pool4(x), pool3) + self.score_pool3(pool3)


def upsample(scores: torch.Tensor, size) -> torch.Tensor:
    """Scores at the input's size, by bilinear interpolation (torchvision's, exactly)."""
    return F.interpolate(scores, size=size, mode="bilinear", align_corners=False)


class SegmentationModel(nn.Module):
    """backbone -> classifier (-> aux_classifier on layer3) -> scores at the input's size:
    the shape of torchvision's FCN and DeepLabV3, whose attribute names it keeps.

    `classifier` takes layer4's maps, or all stages' where it sets takes_all_stages."""

    def __init__(self, backbone: nn.Module, classifier: nn.Module, num_classes: int,
                 aux: bool):
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.cam_layer = backbone.layer_name(backbone.out_stage)  # the deepest maps (Grad-CAM)
        # None, not absent: weights.load_state skips a checkpoint's keys for a part set to None
        self.aux_classifier = (FCNHead(backbone.channels[backbone.aux_stage], num_classes)
                               if aux else None)

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        features = self.backbone(x)
        whole = getattr(self.classifier, "takes_all_stages", False)
        stages = self.backbone
        logits = upsample(self.classifier(features if whole else features[stages.out_stage]),
                          size)
        if self.aux_classifier is None or not self.training:
            return logits
        aux = upsample(self.aux_classifier(features[stages.aux_stage]), size)
        return AuxOutputs(logits, (aux,), (AUX_WEIGHT,))

    def classifier_names(self) -> list[str]:
        """The layers that output class scores (fresh when loading weights for other
        classes)."""
        heads = [("classifier", self.classifier), ("aux_classifier", self.aux_classifier)]
        return [f"{name}.{layer}" for name, head in heads if head is not None
                for layer in head.score_layers]


HEADS = ("fcn8s", "torchvision")


class FCN(SegmentationModel):
    def __init__(self, num_classes: int = 21, in_channels: int = 3, backbone: str = "resnet50",
                 head: str = "fcn8s", aux: bool = False, stem: str = "imagenet"):
        if head not in HEADS:
            raise unknown_name("head", head, HEADS)
        if head == "fcn8s" and backbone not in RESNETS:
            raise UserError("FCN-8s fuses a ResNet's layer2, layer3 and layer4; for "
                            f"backbone={backbone} use head=torchvision.")
        # torchvision's layout dilates layer3/4 for stride 8; FCN-8s gets there by skips.
        dilate = head == "torchvision" and stem == "imagenet"
        features = make_backbone(backbone, in_channels, stem, dilate)
        classifier = (FCN8sHead(features.channels, num_classes) if head == "fcn8s"
                      else FCNHead(features.channels[features.out_stage], num_classes))
        super().__init__(features, classifier, num_classes, aux)
        self.torchvision_name = f"fcn_{backbone}"  # its weights' name, where torchvision has some


@register_model(family="fcn", task="segment", input_size=(3, 520, 520),
                small_input_size=(3, 8, 8), architecture=FCN, num_classes=21,
                torchvision={"head": "torchvision"},
                mean=IMAGENET_MEAN, std=IMAGENET_STD,
                paper="Long, Shelhamer & Darrell 2015, Fully convolutional networks for "
                      "semantic segmentation")
def fcn(**kwargs):
    return FCN(**kwargs)
