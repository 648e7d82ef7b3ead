"""LeNet-5 (LeCun et al. 1998) as lecture 004 writes it: 5x5 convolutions, sigmoid, 2x2 average pooling.

    Conv2d(1, 6, 5, padding=2), Sigmoid, AvgPool2d(2, 2),
    Conv2d(6, 16, 5), Sigmoid, AvgPool2d(2, 2),
    Flatten, Linear(16*5*5, 120), Sigmoid, Linear(120, 84), Sigmoid, Linear(84, 10)

61,706 parameters for 1x28x28 input and 10 classes. `activation="relu"` swaps every sigmoid.
"""
from torch import nn

from .base import FeaturesHeadModel, activation as make_activation
from .registry import register_model


class LeNet5(FeaturesHeadModel):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "sigmoid"):
        super().__init__()
        act = lambda: make_activation(activation)  # noqa: E731 -- a fresh module per use
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )


@register_model(family="lenet", input_size=(1, 28, 28), architecture=LeNet5,
                paper="LeCun et al. 1998, Gradient-based learning applied to document recognition")
def lenet5(**kwargs):
    return LeNet5(**kwargs)
