"""Object detectors and Mask R-CNN: torchvision's detection package, on cnnlab's backbones.

(detection.py registers them by name without importing this module: torchvision's detection
package pulls in torch._dynamo, seconds of start-up a classification run must not pay.)

Nothing here re-implements a detector: each model is torchvision's class (a subclass that only
adds the names cnnlab asks of every model), built on a backbone with a feature pyramid
(Lin et al. 2017: each level gets the meaning of the deepest maps and the detail of its own):

    fasterrcnn  Ren et al. 2015: a region proposal network, then a head that classifies each
                proposal and refines its box (two stages)
    maskrcnn    He et al. 2017: Faster R-CNN plus a small FCN that paints each object's mask
    retinanet   Lin et al. 2017: one stage, dense anchors, the focal loss
    fcos        Tian et al. 2019: one stage, no anchors: every location predicts its distances
                to the four sides of the box it lies in
    ssdlite     Liu et al. 2016 / Sandler et al. 2018: one stage on MobileNetV3 (torchvision's
                ssdlite320_mobilenet_v3_large), for phones

backbone: cnnlab's resnet18 ... resnet101 (torchvision's names, so the COCO checkpoints of
fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn, retinanet_resnet50_fpn and fcos_resnet50_fpn
load with --weights torchvision or --weights-file), efficientnet_lite0 (its ImageNet weights
ship with cnnlab's `pretrained` extra: --pretrained efficientnet_lite0 fills it), or
mobilenet_v3_large for fasterrcnn (torchvision's fasterrcnn_mobilenet_v3_large_fpn).

Sizes: torchvision's detectors resize every image so its shorter side is min_size (800,
for COCO's photographs); `min_size`/`max_size` and `anchor_sizes` (one tuple of box sides
per pyramid level) are options, which --task detect chooses from the data (tasks/detect.py)
so that 64x64 shapes are neither blown up to 800 pixels nor looked for with 512-pixel anchors.
"""
from __future__ import annotations

from torch import nn
from torchvision.models import detection as tvd
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from ..errors import UserError, unknown_name
from . import resnet as resnets

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
FPN_CHANNELS = 256
# COCO-sized defaults, torchvision's: the shorter side of every image resized to 800.
COCO_MIN_SIZE, COCO_MAX_SIZE = 800, 1333


def frozen_norms(module: nn.Module) -> nn.Module:
    """Every BatchNorm2d replaced by FrozenBatchNorm2d, as torchvision builds a detector whose
    backbone starts from trained weights: detection batches are a few images, too few for
    batch statistics, so the trained ones stay fixed (and its checkpoints hold no
    num_batches_tracked)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, child.eps))
        else:
            frozen_norms(child)
    return module


def fpn_backbone(name: str, in_channels: int, levels: tuple[int, ...], extra: nn.Module,
                 frozen_norm: bool = False, channels: int = FPN_CHANNELS) -> BackboneWithFPN:
    """A pyramid over the backbone's stages `levels` (1..4: strides 4, 8, 16, 32)."""
    if name in RESNETS:
        body = getattr(resnets, name)(num_classes=1, in_channels=in_channels)
        stage_names = [f"layer{i}" for i in range(1, 5)]
        widths = [64 * 2 ** i * body.layer1[0].expansion for i in range(4)]
    elif name == "efficientnet_lite0":
        from .lite_encoder import Lite0Encoder
        encoder = Lite0Encoder(in_channels)
        body = encoder.features
        stage_names = ["stage3", "stage4", "stage6", "stage8"]  # strides 4, 8, 16, 32
        widths = [encoder.channels[n] for n in stage_names]
    else:
        raise unknown_name("backbone", name, (*RESNETS, "efficientnet_lite0"))  # MobileNetV3:
        # --model fasterrcnn_mobilenet or ssdlite, torchvision's own builds
    if frozen_norm:
        frozen_norms(body)
    chosen = [level - 1 for level in levels]
    return BackboneWithFPN(body, {stage_names[i]: str(k) for k, i in enumerate(chosen)},
                           [widths[i] for i in chosen], channels, extra_blocks=extra)


def _anchors(sizes, ratios=(0.5, 1.0, 2.0)) -> AnchorGenerator:
    sizes = tuple(tuple(int(s) for s in level) for level in sizes)
    return AnchorGenerator(sizes, (tuple(ratios),) * len(sizes))


def _two_stage(proposals: int, sampled_rois: int) -> dict:
    """The region proposals kept per image (torchvision's 2000 in training, half that at
    test time) and the proposals per image the box head learns from (its 512): numbers for
    COCO's crowded 800-pixel photographs, a hundred times what a 64x64 image needs."""
    return {"rpn_pre_nms_top_n_train": proposals, "rpn_post_nms_top_n_train": proposals,
            "rpn_pre_nms_top_n_test": proposals // 2, "rpn_post_nms_top_n_test": proposals // 2,
            "box_batch_size_per_image": sampled_rois}


def _inside(backbone: str) -> dict:
    """How the detector normalises its [0, 1] input: ImageNet's statistics (torchvision's
    default, what its ResNets were trained on), or Lite0's (x - 127/255) / (128/255)."""
    if backbone == "efficientnet_lite0":
        from .efficientnet import LITE_MEAN, LITE_STD
        return {"image_mean": list(LITE_MEAN), "image_std": list(LITE_STD)}
    return {}


def _sizes(min_size, max_size) -> dict:
    return {"min_size": min_size or COCO_MIN_SIZE, "max_size": max_size or COCO_MAX_SIZE}


class DetectorNames:
    """What cnnlab asks of every model, for torchvision's detectors: the layers that output
    class scores (fresh for another class count when loading weights), where Grad-CAM looks,
    and the name of torchvision's weights for the same layout."""
    score_layers: tuple[str, ...] = ()
    torchvision_name: str = ""
    # In training mode it takes the targets too and returns its losses (tasks/detect.py), so
    # no step can be timed on images alone (accel/fastpath.py keeps the defaults).
    takes_targets = True
    features_path = "backbone.body"  # the stages featuremaps and report show (look/)

    def classifier_names(self) -> list[str]:
        return list(self.score_layers)

    def pretrained_part(self) -> tuple[str, str]:
        """Where --pretrained's ImageNet weights go (training/transfer.py): the pyramid's
        body, whose keys are the classifier's (Lite0's under `features.`)."""
        return "backbone.body", "features." if "stem" in self.backbone.body else ""


class TwoStage(DetectorNames):
    """Faster R-CNN's construction, shared by Mask R-CNN (the options: detection.py)."""
    prefix = ""  # torchvision's weights are named <prefix>_<backbone>_fpn

    def __init__(self, num_classes: int, in_channels: int, backbone: str, min_size, max_size,
                 anchor_sizes, frozen_norm: bool, fpn_channels: int, proposals: int,
                 sampled_rois: int):
        features = fpn_backbone(backbone, in_channels, (1, 2, 3, 4), LastLevelMaxPool(),
                                frozen_norm, fpn_channels)
        super().__init__(features, num_classes, rpn_anchor_generator=_anchors(anchor_sizes),
                         **_sizes(min_size, max_size), **_two_stage(proposals, sampled_rois),
                         **_inside(backbone))
        self.torchvision_name = f"{self.prefix}_{backbone}_fpn"


class FasterRCNN(TwoStage, tvd.FasterRCNN):
    score_layers = ("roi_heads.box_predictor.cls_score", "roi_heads.box_predictor.bbox_pred")
    prefix = "fasterrcnn"


class MaskRCNN(TwoStage, tvd.MaskRCNN):
    score_layers = (*FasterRCNN.score_layers, "roi_heads.mask_predictor.mask_fcn_logits")
    prefix = "maskrcnn"

    def __init__(self, num_classes: int, in_channels: int, backbone: str, min_size, max_size,
                 anchor_sizes, frozen_norm: bool, fpn_channels: int, proposals: int,
                 sampled_rois: int, mask_channels: int = 256):
        # The mask head: four 3x3 convolutions at 14x14 per object, a 2x transposed one, a
        # 1x1 score per class; torchvision's 256 channels cost most of a training step on
        # small images once many proposals are objects (profiled: about 7 of a 10.8 s step
        # at batch 32, 64x64 images, 330 object proposals).
        super().__init__(num_classes, in_channels, backbone, min_size, max_size, anchor_sizes,
                         frozen_norm, fpn_channels, proposals, sampled_rois)
        if mask_channels != 256:  # torchvision's own, built above, otherwise
            self.roi_heads.mask_head = MaskRCNNHeads(fpn_channels, (mask_channels,) * 4, 1)
            self.roi_heads.mask_predictor = MaskRCNNPredictor(mask_channels, mask_channels,
                                                              num_classes)


class OneStage(DetectorNames):
    """RetinaNet's and FCOS's construction: a pyramid on layer2..layer4 plus P6 and P7."""
    prefix = ""

    def __init__(self, num_classes: int, in_channels: int, backbone: str, min_size, max_size,
                 anchor_sizes, frozen_norm: bool, fpn_channels: int):
        features = fpn_backbone(backbone, in_channels, (2, 3, 4),
                                LastLevelP6P7(fpn_channels, fpn_channels), frozen_norm,
                                fpn_channels)
        super().__init__(features, num_classes, anchor_generator=self.anchors(anchor_sizes),
                         **_sizes(min_size, max_size), **_inside(backbone))
        self.torchvision_name = f"{self.prefix}_{backbone}_fpn"


class RetinaNet(OneStage, tvd.RetinaNet):
    score_layers = ("head.classification_head.cls_logits",)
    prefix = "retinanet"

    @staticmethod
    def anchors(sizes) -> AnchorGenerator:
        # three sizes per level, 2^0, 2^(1/3) and 2^(2/3) times the base, three shapes each
        return _anchors(tuple(tuple(int(s * 2 ** (k / 3)) for s in level for k in range(3))
                              for level in sizes))


class FCOS(OneStage, tvd.FCOS):
    score_layers = ("head.classification_head.cls_logits",)
    prefix = "fcos"

    @staticmethod
    def anchors(sizes) -> AnchorGenerator:
        # FCOS has no anchor boxes; the generator only marks one location per stride.
        return _anchors(sizes, (1.0,))


def _torchvision_built(builder, cls_name: str, score_layers, weights_name: str):
    """A torchvision builder's model with DetectorNames mixed in (its keys unchanged)."""
    def build(num_classes: int = 91, in_channels: int = 3, **options):
        if in_channels != 3:
            raise UserError(f"{weights_name} takes RGB images only.")
        model = builder(weights=None, weights_backbone=None, num_classes=num_classes, **options)
        model.__class__ = type(cls_name, (DetectorNames, type(model)),
                               {"score_layers": score_layers, "torchvision_name": weights_name})
        return model
    return build


def mobilenet_fasterrcnn(num_classes: int, in_channels: int, frozen_norm: bool = False,
                         **options) -> nn.Module:
    model = _torchvision_built(tvd.fasterrcnn_mobilenet_v3_large_fpn, "FasterRCNNMobileNet",
                               FasterRCNN.score_layers, "fasterrcnn_mobilenet_v3_large_fpn")(
        num_classes, in_channels, **options)
    if frozen_norm:
        frozen_norms(model.backbone)
    return model


def ssdlite(num_classes: int, in_channels: int) -> nn.Module:
    return _torchvision_built(tvd.ssdlite320_mobilenet_v3_large, "SSDLite",
                              tuple(f"head.classification_head.module_list.{i}.1"
                                    for i in range(6)), "ssdlite320_mobilenet_v3_large")(
        num_classes, in_channels)
