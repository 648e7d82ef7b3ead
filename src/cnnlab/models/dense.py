"""One weight per pixel: the dense baselines a convolution is measured against.

004 starts there: 'Linear regression on images - we have one parameter for each pixel of the
image', and shows why it fails when the car moves; 002 counts what it costs: a 200x200x3 image
into 1000 units is 120 million weights. `linear` is that regression (one layer, flattened
pixels to class scores); `mlp` adds one hidden layer of `hidden` units with a ReLU, the
multilayer perceptron a course trains before its first CNN.

Both take a fixed image size (28x28 by default, like LeNet: `cnnlab train` resizes the data to
it), because the first layer has one weight per input pixel and channel.
"""
from __future__ import annotations

from torch import nn

from .base import FeaturesHeadModel, activation as make_activation
from .registry import register_model

PAPER = "004 'Linear regression on images'; 002 'Too many parameters!' (the dense baseline)"


class DenseNet(FeaturesHeadModel):
    """Flatten, then `hidden` fully connected layers with `activation`, then the class scores.

    Its feature maps (forward_features) are the pixels themselves: with no convolution there
    is nothing spatial to extract, and the whole network is the head. The interface every
    model offers (feature maps N x C x H x W, reset_classifier) then holds unchanged."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size=(28, 28),
                 hidden: tuple[int, ...] = (), activation: str = "relu"):
        super().__init__()
        width = in_channels * image_size[0] * image_size[1]
        layers: list[nn.Module] = [nn.Flatten()]
        for units in hidden:
            layers += [nn.Linear(width, units), make_activation(activation)]
            width = units
        self.features = nn.Identity()
        self.head = nn.Sequential(*layers, nn.Linear(width, num_classes))


@register_model(family="dense", input_size=(1, 28, 28), architecture=DenseNet, paper=PAPER)
def linear(num_classes: int = 10, in_channels: int = 1):
    return DenseNet(num_classes, in_channels)


@register_model(family="dense", input_size=(1, 28, 28), architecture=DenseNet, paper=PAPER)
def mlp(num_classes: int = 10, in_channels: int = 1, hidden: int = 256, activation: str = "relu"):
    return DenseNet(num_classes, in_channels, hidden=(hidden,), activation=activation)
