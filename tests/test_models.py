"""The model zoo: published parameter counts, torchvision compatibility, and the shared interface
of every registered model (parametrised over list_models(), so a new model is tested at once)."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnlab import UserError, create_model, list_models, model_info
from cnnlab.layers import LocalResponseNorm, SwitchableNorm2d
from cnnlab.models import plan_input
from cnnlab.tasks.classify import Classify


def count(name: str, **kwargs) -> int:
    """Parameters without allocating or initialising them (the meta device)."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, kwargs, published", [
    # torchvision's metadata (weights.meta["num_params"]) for the same architectures
    ("alexnet", {"layout": "torchvision"}, 61_100_840),
    ("vgg11", {}, 132_863_336),
    ("vgg16", {}, 138_357_544),
    ("vgg19", {}, 143_667_240),
    ("vgg16_bn", {}, 138_365_992),
    ("googlenet", {"layout": "torchvision", "aux_logits": False}, 6_624_904),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    # the lectures
    ("lenet5", {}, 61_706),        # 004, 1x28x28 input, 10 classes
    ("cifar2_net", {}, 18_090),    # CS428 lecture 4: 3x32x32 input, 2 classes
    # Krizhevsky et al. with its two-GPU grouping: 34,944 + 307,456 + 885,120 + 663,936 +
    # 442,624 (convs) + 37,752,832 + 16,781,312 + 4,097,000 (dense) -- the '60 million'
    ("alexnet", {}, 60_965_224),
])
def test_parameter_counts_equal_the_published_ones(name, kwargs, published):
    assert count(name, **kwargs) == published


def test_cifar_resnet20_has_0_27_million_parameters_and_deeper_ones_grow_by_blocks():
    # He et al. table 6: 0.27M for ResNet-20 (option A shortcuts add no parameters).
    assert count("resnet20") == 269_722
    assert round(count("resnet20") / 1e6, 2) == 0.27
    assert [round(count(f"resnet{d}") / 1e6, 2) for d in (32, 44, 56)] == [0.46, 0.66, 0.85]
    assert count("resnet20", shortcut="B") > count("resnet20")


def test_cifar2_net_layers_have_the_books_parameter_list():
    model = create_model("cifar2_net")
    assert [p.numel() for p in model.parameters()] == [432, 16, 1152, 8, 16384, 32, 64, 2]


@pytest.mark.parametrize("name", [n for n in list_models() if model_info(n).torchvision is not None])
def test_every_torchvision_layout_has_torchvisions_parameter_count(name):
    info = model_info(name)
    kwargs = dict(info.torchvision)
    if "aux_logits" in info.options:
        kwargs["aux_logits"] = False  # torchvision counts GoogLeNet without its training heads
    if "aux" in info.options:
        kwargs["aux"] = True  # but FCN's and DeepLabV3's checkpoints with their aux heads
    with torch.device("meta"):  # a segmenter's weights are named for its backbone too
        weights = getattr(create_model(name, **kwargs), "torchvision_name", name)
    published = torchvision.models.get_model_weights(weights).DEFAULT.meta["num_params"]
    assert count(name, **kwargs) == published


def _randomise_norm_statistics(model: nn.Module) -> None:
    """Random running statistics, so evaluation-mode batch norm is not the identity."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)


@pytest.mark.parametrize("name, size", [("alexnet", 64), ("vgg16", 32), ("vgg16_bn", 32),
                                        ("googlenet", 64), ("resnet18", 64), ("resnet50", 64)])
@torch.no_grad()
def test_torchvisions_state_dict_loads_and_gives_the_same_outputs(name, size):
    torch.manual_seed(0)
    extra = ({"aux_logits": True, "init_weights": False, "transform_input": True}
             if name == "googlenet" else {})
    theirs = torchvision.models.get_model(name, weights=None, num_classes=10, **extra).eval()
    _randomise_norm_statistics(theirs)
    with torch.device("meta"):  # no time spent initialising weights that are replaced
        ours = create_model(name, num_classes=10, **model_info(name).torchvision)
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    ours.eval()
    x = torch.randn(2, 3, size, size)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in list_models() if model_info(n).task == "classify"])
def test_every_classifier_trains_at_its_smallest_input_and_offers_the_transfer_interface(name):
    info = model_info(name)
    torch.manual_seed(0)
    kwargs = {"stem": "small"} if info.small_input_size else {}
    model = create_model(name, num_classes=3, **kwargs)
    x = torch.randn(2, *info.smallest_input_size)
    loss, logits = Classify().loss(model(x), torch.tensor([0, 2]))
    loss.backward()
    assert logits.shape == (2, 3)
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters with no gradient: {unused[:5]}"

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.dim() == 4  # feature maps, before global pooling
        torch.testing.assert_close(model.forward_head(features), model(x))
        model.reset_classifier(5)
        assert model(x).shape == (2, 5)
    assert model.get_classifier().out_features == 5
    assert len(info.mean) == len(info.std) == info.input_size[0]


def test_imagenet_models_record_imagenet_statistics_and_the_small_stem_sizes():
    for name in list_models():
        info = model_info(name)
        if info.input_size[1:] == (224, 224):
            imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            # EfficientNet-Lite's TensorFlow weights take pixels scaled to [-1, 1] instead.
            lite = ((127 / 255,) * 3, (128 / 255,) * 3)
            assert (info.mean, info.std) == (lite if info.family == "efficientnet" else imagenet)
            assert info.num_classes == 1000 and "stem" in info.options
            assert info.small_input_size is not None


@torch.no_grad()
def test_feature_map_sizes_follow_the_papers():
    sizes = []
    hook = lambda module, inputs, output: sizes.append(output.shape[-1])  # noqa: E731
    with torch.device("meta"):
        zfnet = create_model("zfnet")
        for conv in [m for m in zfnet.features if isinstance(m, nn.Conv2d)]:
            conv.register_forward_hook(hook)
        assert zfnet.forward_features(torch.empty(1, 3, 224, 224)).shape == (1, 512, 6, 6)
        assert sizes == [110, 26, 13, 13, 13]  # Zeiler & Fergus, figure 3
        assert create_model("alexnet").forward_features(torch.empty(1, 3, 224, 224)).shape == (1, 256, 6, 6)
        assert create_model("resnet50").forward_features(torch.empty(1, 3, 224, 224)).shape == (1, 2048, 7, 7)
        googlenet = create_model("googlenet").eval()
        assert googlenet.forward_features(torch.empty(1, 3, 224, 224)).shape == (1, 1024, 7, 7)
        # The small stems keep more of a 32x32 image than the ImageNet ones would.
        for name in ("resnet18", "googlenet"):
            small = create_model(name, stem="small").eval()
            assert small.forward_features(torch.empty(1, 3, 32, 32)).shape[-1] == 4


def test_vgg_needs_32_pixels_for_its_five_pools():
    model = create_model("vgg11", stem="small")
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 31, 31))


def test_alexnet_options_lrn_groups_and_dropout():
    with torch.device("meta"):
        paper = create_model("alexnet")
        torchvisions = create_model("alexnet", layout="torchvision")
        lrn_off = create_model("alexnet", lrn=False)
        light = create_model("alexnet", dropout=0.2)
    assert sum(isinstance(m, LocalResponseNorm) for m in paper.modules()) == 2
    assert [m.groups for m in paper.features if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2, 2]
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in torchvisions.modules())
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in lrn_off.modules())
    assert all(m.p == 0.2 for m in light.modules() if isinstance(m, nn.Dropout))


def test_googlenet_paper_layout_has_5x5_branches_and_torchvision_3x3():
    paper = create_model("googlenet")
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert create_model("googlenet", layout="torchvision").inception3a.branch3[1].conv.kernel_size == (3, 3)


def test_googlenet_aux_classifiers_only_in_training():
    model = create_model("googlenet", num_classes=4, stem="small")
    out = model(torch.randn(2, 3, 16, 16))
    assert [a.shape for a in out.aux] == [(2, 4), (2, 4)] and out.aux_weights == (0.3, 0.3)
    model.reset_classifier(6)  # the side heads follow the new class count too
    assert [a.shape[1] for a in model(torch.randn(2, 3, 16, 16)).aux] == [6, 6]
    model.eval()
    assert isinstance(model(torch.randn(2, 3, 16, 16)), torch.Tensor)
    no_aux = create_model("googlenet", aux_logits=False, stem="small")
    assert isinstance(no_aux(torch.randn(2, 3, 16, 16)), torch.Tensor)


@pytest.mark.parametrize("name, kind", [("resnet18", nn.GroupNorm), ("resnet20", nn.GroupNorm),
                                        ("vgg11", SwitchableNorm2d), ("googlenet", nn.InstanceNorm2d)])
def test_a_norm_chosen_by_name_replaces_every_batch_norm(name, kind):
    norm = {nn.GroupNorm: "group", SwitchableNorm2d: "switchable", nn.InstanceNorm2d: "instance"}[kind]
    with torch.device("meta"):
        model = create_model(name, norm=norm)
    assert any(isinstance(m, kind) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_vgg_bn_is_vgg_with_batch_norm_and_norm_none_removes_it():
    with torch.device("meta"):
        assert sum(isinstance(m, nn.BatchNorm2d) for m in create_model("vgg16_bn").modules()) == 13
        assert not any(isinstance(m, nn.BatchNorm2d) for m in create_model("vgg16_bn", norm="none").modules())
        plain = create_model("googlenet", norm="none")
    assert plain.conv1.conv.bias is not None  # without a norm, convolutions need their bias


@pytest.mark.parametrize("kwargs, message", [
    ({"norm": "group"}, "lenet5 keeps its own normalisation; a norm can be chosen for the "
                        "cifar_fast, googlenet, resnet, unet, vgg models"),
    ({"colour": "red"}, "lenet5 has no option 'colour'; its options are: activation"),
    ({"activation": "swish"}, "unknown activation 'swish'"),
])
def test_bad_options_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        create_model("lenet5", **kwargs)


@pytest.mark.parametrize("name, kwargs, message", [
    ("resnet18", {"stem": "tiny"}, "unknown stem 'tiny'; choose one of: imagenet, small"),
    ("resnet18", {"norm": "batchnorm"}, "unknown norm 'batchnorm'"),
    ("googlenet", {"layout": "keras"}, "unknown GoogLeNet layout 'keras'"),
    ("alexnet", {"layout": "caffe"}, "unknown AlexNet layout 'caffe'"),
    ("resnet20", {"shortcut": "C"}, "unknown shortcut option 'C'"),
    ("nosuchnet", {}, "unknown model 'nosuchnet'; choose one of: alexnet"),
])
def test_bad_option_values_are_user_errors(name, kwargs, message):
    with pytest.raises(UserError, match=message):
        create_model(name, **kwargs)


def test_defaults_are_the_architectures_own_classes_and_channels():
    with torch.device("meta"):
        assert create_model("resnet18").fc.out_features == 1000
        assert create_model("lenet5").features[0].in_channels == 1
        assert create_model("cifar2_net").head[-1].out_features == 2
        assert create_model("resnet18", in_channels=1, num_classes=7).conv1.in_channels == 1


@pytest.mark.parametrize("name, image, kwargs, pretrained, size, stem", [
    ("resnet18", (8, 8), {}, False, (3, 8, 8), "small"),        # digits: no upsampling needed
    ("vgg16", (8, 8), {}, False, (3, 32, 32), "small"),         # five pools need 32
    ("alexnet", (28, 28), {}, False, (3, 28, 28), "small"),     # MNIST
    ("googlenet", (32, 32), {}, False, (3, 32, 32), "small"),   # CIFAR
    ("resnet18", (224, 180), {}, False, (3, 224, 224), "imagenet"),
    ("resnet18", None, {}, False, (3, 224, 224), "imagenet"),   # image files of unknown size
    ("resnet18", (8, 8), {}, True, (3, 224, 224), "imagenet"),  # pretrained: the stem it was trained with
    ("resnet18", (8, 8), {"stem": "imagenet"}, False, (3, 224, 224), "imagenet"),
    ("resnet18", (300, 300), {"stem": "small"}, False, (3, 300, 300), "small"),
])
def test_plan_input_chooses_the_stem_from_the_image_size(name, image, kwargs, pretrained, size, stem):
    assert plan_input(model_info(name), image, kwargs, pretrained) == (size, {**kwargs, "stem": stem})


def test_plan_input_keeps_small_architectures_at_their_own_size():
    relu = {"activation": "relu"}
    assert plan_input(model_info("lenet5"), (8, 8), relu) == ((1, 28, 28), relu)
    assert plan_input(model_info("resnet20"), (8, 8), {})[0] == (3, 32, 32)
