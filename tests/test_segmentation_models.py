"""FCN and DeepLabV3: torchvision's checkpoints load and give torchvision's outputs, every
segmentation model trains on shapes-sized images, and dilated ResNets match torchvision's."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import segmentation

from cnnlab import UserError, create_model, list_models, model_info
from cnnlab.models import parameter_count, plan_input
from cnnlab.models.base import AuxOutputs
from cnnlab.tasks.segment import Segment
from test_models import _randomise_norm_statistics  # tests/ is on the path (rootdir-relative)

# the large ones (DeepLabV3 on ResNet-50: 40M parameters) take more than 3 s to build
SEGMENTERS = [pytest.param(name, marks=[pytest.mark.slow] if parameter_count(name) > 30e6 else [])
              for name in list_models() if model_info(name).task == "segment"]


@pytest.mark.slow
@pytest.mark.parametrize("theirs_name, name, options", [
    ("deeplabv3_resnet50", "deeplabv3", {"aux": True}),
    ("deeplabv3_resnet50", "deeplabv3", {}),  # the checkpoint's aux head is skipped
    ("fcn_resnet50", "fcn", {"head": "torchvision", "aux": True}),
])
@torch.no_grad()
def test_torchvisions_checkpoints_load_with_weights_file_and_give_its_outputs(
        tmp_path, theirs_name, name, options):
    torch.manual_seed(0)
    theirs = getattr(segmentation, theirs_name)(weights=None, weights_backbone=None,
                                                num_classes=4, aux_loss=True).eval()
    _randomise_norm_statistics(theirs)
    path = tmp_path / f"{theirs_name}.pth"
    torch.save(theirs.state_dict(), path)
    ours = create_model(name, num_classes=4, weights_file=path, **options).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x)["out"], atol=1e-5, rtol=1e-5)


def _torchvisions_lraspp(classes: int) -> nn.Module:
    torch.manual_seed(0)
    theirs = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                    num_classes=classes).eval()
    _randomise_norm_statistics(theirs)
    return theirs


@torch.no_grad()
def test_lraspp_loads_torchvisions_checkpoint_and_gives_its_outputs(tmp_path):
    theirs = _torchvisions_lraspp(4)
    torch.save(theirs.state_dict(), tmp_path / "lraspp.pth")
    ours = create_model("lraspp", num_classes=4, weights_file=tmp_path / "lraspp.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x)["out"], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_weights_torchvision_reads_torchs_cache_and_starts_fresh_score_layers(tmp_path):
    from torchvision.models import get_model_weights
    theirs = _torchvisions_lraspp(21)  # VOC's classes, as torchvision's checkpoint
    url = get_model_weights("lraspp_mobilenet_v3_large").DEFAULT.url
    (tmp_path / "checkpoints").mkdir()
    torch.save(theirs.state_dict(), tmp_path / "checkpoints" / url.rsplit("/", 1)[-1])
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))  # what is cached there loads without the network
    try:
        ours = create_model("lraspp", num_classes=3, weights="torchvision")
    finally:
        torch.hub.set_dir(before)
    torch.testing.assert_close(ours.backbone[16][0].weight, theirs.backbone["16"][0].weight)
    assert ours.classifier.low_classifier.out_channels == 3  # the user's classes, fresh
    with pytest.raises(UserError, match="torchvision has no weights for fcn_resnet18"):
        create_model("fcn", backbone="resnet18", weights="torchvision")


def _train_step(model: nn.Module, size: tuple[int, int, int], classes: int):
    torch.manual_seed(0)
    x = torch.randn(2, *size)
    masks = torch.randint(0, classes, (2, *size[1:]))
    outputs = model.train()(x)
    loss, logits = Segment().loss(outputs, masks)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters with no gradient: {unused[:5]}"
    return outputs, logits


@pytest.mark.parametrize("name", SEGMENTERS)
def test_every_segmentation_model_trains_on_shapes_sized_images(name):
    info = model_info(name)
    size, options = plan_input(info, (32, 32), {})  # the small stem where there is one
    model = create_model(name, num_classes=4, **options)
    _, logits = _train_step(model, size, 4)
    assert logits.shape == (2, 4, 32, 32)


@pytest.mark.parametrize("name, options", [
    ("fcn", {"backbone": "resnet18", "stem": "small"}),
    ("fcn", {"backbone": "resnet34", "head": "torchvision", "aux": True, "stem": "small"}),
    ("fcn", {"backbone": "resnet18", "head": "torchvision", "aux": True}),  # dilated BasicBlocks
    ("deeplabv3", {"backbone": "resnet18", "aux": True, "stem": "small", "rates": (1, 2, 3)}),
    ("deeplabv3", {"backbone": "resnet18"}),
])
def test_the_options_train_and_aux_heads_add_their_logits_in_training_only(name, options):
    model = create_model(name, num_classes=4, **options)
    outputs, logits = _train_step(model, (3, 32, 32), 4)
    assert logits.shape == (2, 4, 32, 32)
    assert isinstance(outputs, AuxOutputs) == options.get("aux", False)
    if options.get("aux"):
        assert outputs.aux[0].shape == logits.shape and outputs.aux_weights == (0.5,)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 4, 32, 32)


@pytest.mark.parametrize("name, options", [
    ("fcn", {"backbone": "resnet18"}), ("fcn", {"backbone": "resnet18", "head": "torchvision"}),
    ("deeplabv3", {"backbone": "resnet18"}), ("unet", {}), ("lraspp", {}),
    ("unet", {"backbone": "efficientnet_lite0"}),
    ("deeplabv3", {"backbone": "efficientnet_lite0", "aux": True}),
])
@torch.no_grad()
def test_odd_sizes_give_scores_at_the_inputs_size(name, options):
    model = create_model(name, num_classes=3, **options).eval()
    assert model(torch.randn(1, 3, 45, 37)).shape == (1, 3, 45, 37)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@torch.no_grad()
def test_the_lite0_encoder_dilates_to_its_output_stride_with_the_classifiers_weights(
        output_stride):
    from cnnlab.models.lite_encoder import Lite0Encoder
    encoder = Lite0Encoder(output_stride=output_stride).eval()
    maps = encoder(torch.randn(1, 3, 64, 64))
    assert maps["stage8"].shape == (1, 320, 64 // output_stride, 64 // output_stride)
    assert maps["stage4"].shape[-1] == 64 // 8
    classifier = create_model("efficientnet_lite0")
    own = encoder.state_dict()
    assert set(own) <= set(classifier.state_dict())  # the classifier's weights load unchanged
    assert all(own[k].shape == classifier.state_dict()[k].shape for k in own)


def test_fcn8s_upsampling_starts_as_bilinear_and_the_skips_start_at_zero():
    head = create_model("fcn", num_classes=2, backbone="resnet18").classifier
    scores = torch.randn(1, 2, 4, 4)
    doubled = head.upscore2(scores)
    assert doubled.shape == (1, 2, 8, 8)
    # the inside of the map is plain bilinear interpolation (the border sees the padding)
    bilinear = nn.functional.interpolate(scores, scale_factor=2, mode="bilinear")
    torch.testing.assert_close(doubled[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1])
    assert not head.score_pool4.weight.any() and not head.score_pool3.weight.any()


@torch.no_grad()
def test_a_checkpoint_for_other_classes_loads_all_but_the_score_layers(tmp_path):
    torch.manual_seed(0)
    saved = create_model("fcn", num_classes=21, backbone="resnet18")
    torch.save(saved.state_dict(), tmp_path / "fcn.pth")
    model = create_model("fcn", num_classes=4, backbone="resnet18",
                         weights_file=tmp_path / "fcn.pth")
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight,
                               saved.backbone.layer4[1].conv2.weight)
    assert model.classifier.score_fr.out_channels == 4
    with pytest.raises(UserError, match="do not fit"):  # FCN-8s weights, torchvision's layout
        create_model("fcn", num_classes=4, backbone="resnet18", head="torchvision",
                     weights_file=tmp_path / "fcn.pth")


@torch.no_grad()
def test_a_dilated_resnet_gives_torchvisions_outputs_at_output_stride_8():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True]).eval()
    _randomise_norm_statistics(theirs)
    ours = create_model("resnet50", replace_stride_with_dilation=(False, True, True))
    ours.load_state_dict(theirs.state_dict())
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    assert ours.forward_features(x).shape[-1] == 64 // 8
    dilations = [m.dilation[0] for m in ours.layer4.modules() if isinstance(m, nn.Conv2d)
                 and m.kernel_size == (3, 3)]
    assert dilations == [2, 4, 4]  # the first block keeps layer3's spacing, as torchvision


@torch.no_grad()
def test_dilated_basic_blocks_keep_the_map_and_the_parameters():
    plain, dilated = create_model("resnet18"), create_model(
        "resnet18", replace_stride_with_dilation=(False, True, True))
    assert [p.shape for p in plain.parameters()] == [p.shape for p in dilated.parameters()]
    assert dilated.forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 512, 8, 8)
    with pytest.raises(UserError, match="3 flags"):
        create_model("resnet18", replace_stride_with_dilation=(True, True))


def test_an_unknown_backbone_or_head_names_the_choices():
    with pytest.raises(UserError, match="resnet50"):
        create_model("deeplabv3", backbone="vgg16")
    with pytest.raises(UserError, match="fcn8s"):
        create_model("fcn", head="fcn32s")
    with pytest.raises(UserError, match="with backbone=efficientnet_lite0"):
        create_model("unet", backbone="efficientnet_lite0", depth=4)
    with pytest.raises(UserError, match="use head=torchvision"):
        create_model("fcn", backbone="efficientnet_lite0")
