"""The CS428 lecture 4 network for CIFAR-2 (airplane vs bird), as the slide writes it:

    conv1 = Conv2d(3, 16, kernel_size=3, padding=1); Tanh; MaxPool2d(2)
    conv2 = Conv2d(16, 8, kernel_size=3, padding=1); Tanh; MaxPool2d(2)
    out.view(-1, 8 * 8 * 8); fc1 = Linear(8 * 8 * 8, 32); Tanh; fc2 = Linear(32, 2)

18,090 parameters for 3x32x32 input and 2 classes: 448 + 1,160 + 16,416 + 66.
"""
from torch import nn

from .base import FeaturesHeadModel
from .registry import register_model


class Cifar2Net(FeaturesHeadModel):
    def __init__(self, num_classes: int = 2, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, kernel_size=3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
        )
        # The slide's `out.view(-1, 8 * 8 * 8)`: 8 channels of 8x8 after two halvings of 32.
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 32), nn.Tanh(),
            nn.Linear(32, num_classes),
        )


@register_model(family="lecture", input_size=(3, 32, 32), num_classes=2, architecture=Cifar2Net,
                mean=(0.4915, 0.4823, 0.4468), std=(0.2470, 0.2435, 0.2616),
                paper="CS428 lecture 4, the cifar2 Net (Stevens et al., Deep Learning with PyTorch, ch. 8)")
def cifar2_net(**kwargs):
    return Cifar2Net(**kwargs)
