"""The lectures' own small CNNs.

`lecture_cnn` is the CIFAR-10 network of the Imperial 'Deep Learning in Python' lecture (001):

    conv1 = Conv2d(3, 6, 3, stride=1, padding=1); ReLU; MaxPool2d(2, 2)
    conv2 = Conv2d(6, 6, 3, stride=1, padding=1); ReLU; MaxPool2d(2, 2)
    Flatten; Linear(6*8*8, 120); ReLU; Linear(120, 84); ReLU; Linear(84, 10)

The 6*8*8 = 384 flattened features assume 32x32 input: two 2x2 poolings halve it twice.
"""
from torch import nn

from .base import FeaturesHeadModel
from .registry import register_model


class LectureCNN(FeaturesHeadModel):
    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        # The slide reuses one ReLU and one pool module; separate modules read the same and
        # keep every layer visible in summaries and feature-map hooks.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=3, stride=1, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 6, kernel_size=3, stride=1, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(6 * 8 * 8, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )


# Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): the PyTorch CIFAR-10 tutorial this network follows.
@register_model(family="lecture", input_size=(3, 32, 32), architecture=LectureCNN,
                mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                paper="Imperial College, Deep Learning in Python, lecture 2 (CIFAR-10 CNN)")
def lecture_cnn(**kwargs):
    return LectureCNN(**kwargs)
