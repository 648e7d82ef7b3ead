"""Video classifiers (--task video): clips in, one class per clip out.

Every model here takes clips frames first, N x T x C x H x W (the layout the data sets store,
data/moving_shapes.py), and reorders them to N x C x T x H x W for its 3-D convolutions.

    c3d            Tran et al. 2015: 3x3x3 convolutions throughout, here narrow (16-128
                   channels) for small clips such as moving-shapes' 8 x 32 x 32
    r3d_18         Tran et al. 2018's video ResNets, built by torchvision.models.video with
    r2plus1d_18    `num_classes`, so their state-dict keys are torchvision's and its Kinetics-400
    mc3_18         weights load with --weights-file (nothing is downloaded)
    frame_average  the baseline that cannot see motion: a 2-D CNN applied to every frame on
                   its own (1x3x3 kernels), its features averaged over time before the classifier
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

# Kinetics-400's statistics (torchvision's video weights' transforms)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def frames_first_to_channels_first(clips: torch.Tensor) -> torch.Tensor:
    """N x T x C x H x W -> N x C x T x H x W."""
    return clips.transpose(1, 2)


def _conv3d(in_channels: int, out_channels: int, kernel=(3, 3, 3)) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel, padding=padding, bias=False),
                         nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class C3D(nn.Module):
    """C3D's design (every convolution 3x3x3, stride 1; the first pool spatial only, so that
    early layers do not merge time too soon), at a width for small clips. BatchNorm after
    each convolution, which the 2015 paper predates, lets it train in a few epochs."""

    def __init__(self, num_classes: int = 4, in_channels: int = 3, width: int = 16,
                 dropout: float = 0.2):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv3d(in_channels, w), nn.MaxPool3d((1, 2, 2)),
            _conv3d(w, 2 * w), nn.MaxPool3d(2),
            _conv3d(2 * w, 4 * w), _conv3d(4 * w, 4 * w), nn.MaxPool3d(2),
            _conv3d(4 * w, 8 * w), nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames_first_to_channels_first(clips)))

    def classifier_names(self) -> list[str]:
        return ["head"]


class FrameAverage(nn.Module):
    """A 2-D CNN on each frame alone (1x3x3 kernels and 1x2x2 pools: no operation mixes two
    frames), its per-frame features averaged over time and space, then one linear layer: as
    good as any single frame, and blind to the order of the frames."""

    def __init__(self, num_classes: int = 4, in_channels: int = 3, width: int = 16,
                 dropout: float = 0.2):
        super().__init__()
        w, k, pool = width, (1, 3, 3), (1, 2, 2)
        self.features = nn.Sequential(
            _conv3d(in_channels, w, k), nn.MaxPool3d(pool),
            _conv3d(w, 2 * w, k), nn.MaxPool3d(pool),
            _conv3d(2 * w, 4 * w, k), _conv3d(4 * w, 4 * w, k), nn.MaxPool3d(pool),
            _conv3d(4 * w, 8 * w, k), nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames_first_to_channels_first(clips)))

    def classifier_names(self) -> list[str]:
        return ["head"]


def _reorder_input(module: nn.Module, args: tuple) -> tuple:
    return (frames_first_to_channels_first(args[0]), *args[1:])


def _torchvision_video(name: str, num_classes: int, in_channels: int) -> nn.Module:
    """torchvision's network `name`, unchanged but for a stem of `in_channels` (when not 3)
    and a hook that turns the clips channels first: the state-dict keys stay torchvision's."""
    # imported here: torchvision's import takes seconds (torch._dynamo with it), which every
    # `cnnlab train` would pay at start-up for registering these three names
    from torchvision.models import video as tv_video

    model = getattr(tv_video, name)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.stem[0]
        model.stem[0] = nn.Conv3d(in_channels, old.out_channels, old.kernel_size, old.stride,
                                  old.padding, bias=old.bias is not None)
    model.register_forward_pre_hook(_reorder_input)
    model.classifier_names = _fc
    return model


def _fc() -> list[str]:
    return ["fc"]


# input_size: the papers' clips are 16 (c3d, r3d: 8 or 16) frames of 112x112; smaller clips
# train at their own size (registry.dense_input_size).
_KINETICS = dict(task="video", input_size=(3, 112, 112), mean=KINETICS_MEAN, std=KINETICS_STD)


@register_model(family="c3d", num_classes=4, architecture=C3D, **_KINETICS,
                paper="Tran, Bourdev, Fergus, Torresani & Paluri 2015, Learning spatiotemporal "
                      "features with 3D convolutional networks")
def c3d(**kwargs):
    return C3D(**kwargs)


@register_model(family="frame_average", num_classes=4, architecture=FrameAverage, **_KINETICS,
                paper="Karpathy et al. 2014, Large-scale video classification with "
                      "convolutional neural networks (single-frame baseline)")
def frame_average(**kwargs):
    return FrameAverage(**kwargs)


_R3D_PAPER = ("Tran, Wang, Torresani, Ray, LeCun & Paluri 2018, A closer look at "
              "spatiotemporal convolutions for action recognition")


@register_model(family="video_resnet", num_classes=400, **_KINETICS, paper=_R3D_PAPER)
def r3d_18(num_classes: int = 400, in_channels: int = 3):
    return _torchvision_video("r3d_18", num_classes, in_channels)


@register_model(family="video_resnet", num_classes=400, **_KINETICS, paper=_R3D_PAPER)
def r2plus1d_18(num_classes: int = 400, in_channels: int = 3):
    return _torchvision_video("r2plus1d_18", num_classes, in_channels)


@register_model(family="video_resnet", num_classes=400, **_KINETICS, paper=_R3D_PAPER)
def mc3_18(num_classes: int = 400, in_channels: int = 3):
    return _torchvision_video("mc3_18", num_classes, in_channels)
