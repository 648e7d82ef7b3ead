"""The detectors by name (detectors.py builds them; imported only when one is built)."""
from __future__ import annotations

from .registry import register_model

# The models normalise inside (ImageNet's statistics, GeneralizedRCNNTransform), so the
# pipeline hands them pixels in [0, 1]: mean 0 and std 1. torchvision's layout of the same
# name: its trained backbones keep frozen batch norms.
_COMMON = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), num_classes=91,
               input_size=(3, 800, 800), torchvision={"frozen_norm": True})
COCO_ANCHORS = ((32,), (64,), (128,), (256,), (512,))


@register_model(family="rcnn", task="detect", paper="Ren, He, Girshick & Sun 2015, Faster "
                "R-CNN: towards real-time object detection with region proposal networks",
                **_COMMON)
def fasterrcnn(num_classes: int = 91, in_channels: int = 3, backbone: str = "resnet50",
               min_size: int | None = None, max_size: int | None = None,
               anchor_sizes=COCO_ANCHORS, frozen_norm: bool = False, fpn_channels: int = 256,
               proposals: int = 2000, sampled_rois: int = 512):
    from .detectors import FasterRCNN
    return FasterRCNN(num_classes, in_channels, backbone, min_size, max_size, anchor_sizes,
                      frozen_norm, fpn_channels, proposals, sampled_rois)


@register_model(family="rcnn", task="instance", paper="He, Gkioxari, Dollar & Girshick 2017, "
                "Mask R-CNN", **_COMMON)
def maskrcnn(num_classes: int = 91, in_channels: int = 3, backbone: str = "resnet50",
             min_size: int | None = None, max_size: int | None = None,
             anchor_sizes=COCO_ANCHORS, frozen_norm: bool = False, fpn_channels: int = 256,
             proposals: int = 2000, sampled_rois: int = 512, mask_channels: int = 256):
    from .detectors import MaskRCNN
    return MaskRCNN(num_classes, in_channels, backbone, min_size, max_size, anchor_sizes,
                    frozen_norm, fpn_channels, proposals, sampled_rois, mask_channels)


@register_model(family="retinanet", task="detect", paper="Lin, Goyal, Girshick, He & Dollar "
                "2017, Focal loss for dense object detection", **_COMMON)
def retinanet(num_classes: int = 91, in_channels: int = 3, backbone: str = "resnet50",
              min_size: int | None = None, max_size: int | None = None,
              anchor_sizes=COCO_ANCHORS, frozen_norm: bool = False, fpn_channels: int = 256):
    from .detectors import RetinaNet
    return RetinaNet(num_classes, in_channels, backbone, min_size, max_size, anchor_sizes,
                     frozen_norm, fpn_channels)


@register_model(family="fcos", task="detect", paper="Tian, Shen, Chen & He 2019, FCOS: fully "
                "convolutional one-stage object detection", **_COMMON)
def fcos(num_classes: int = 91, in_channels: int = 3, backbone: str = "resnet50",
         min_size: int | None = None, max_size: int | None = None,
         anchor_sizes=((8,), (16,), (32,), (64,), (128,)), frozen_norm: bool = False,
         fpn_channels: int = 256):
    from .detectors import FCOS
    return FCOS(num_classes, in_channels, backbone, min_size, max_size, anchor_sizes,
                frozen_norm, fpn_channels)


@register_model(family="rcnn", task="detect", paper="Ren et al. 2015 (Faster R-CNN) on "
                "Howard et al. 2019 (MobileNetV3)", **_COMMON)
def fasterrcnn_mobilenet(num_classes: int = 91, in_channels: int = 3, min_size: int = 800,
                         max_size: int = 1333, frozen_norm: bool = False):
    from .detectors import mobilenet_fasterrcnn
    return mobilenet_fasterrcnn(num_classes, in_channels, frozen_norm, min_size=min_size,
                                max_size=max_size)


@register_model(family="ssd", task="detect", paper="Liu et al. 2016 (SSD), Sandler et al. "
                "2018 (SSDLite), on MobileNetV3",
                **{**_COMMON, "input_size": (3, 320, 320), "torchvision": {}})
def ssdlite(num_classes: int = 91, in_channels: int = 3):
    from .detectors import ssdlite as build
    return build(num_classes, in_channels)
