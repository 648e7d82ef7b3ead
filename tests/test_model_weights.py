"""Pretrained weights: torchvision's (never downloaded in a test) and weights files."""
from __future__ import annotations

import pickle
from urllib.error import URLError

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnlab import UserError, create_model

torch.manual_seed(0)


@pytest.fixture(scope="module")
def torchvision_resnet18():
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def pth_file(torchvision_resnet18, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision_resnet18.state_dict(), path)
    return path


def same_outputs(ours, theirs, size=64):
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_weights_file_pth_and_safetensors_load_exactly(torchvision_resnet18, pth_file, tmp_path):
    same_outputs(create_model("resnet18", weights_file=pth_file), torchvision_resnet18)
    tensors = {k: v.contiguous() for k, v in torchvision_resnet18.state_dict().items()}
    save_file(tensors, tmp_path / "resnet18.safetensors")
    same_outputs(create_model("resnet18", weights_file=tmp_path / "resnet18.safetensors"),
                 torchvision_resnet18)


def test_weights_for_another_class_count_keep_all_but_a_fresh_classifier(torchvision_resnet18, pth_file):
    model = create_model("resnet18", num_classes=7, weights_file=pth_file)
    assert model.fc.out_features == 7
    torch.testing.assert_close(model.conv1.weight, torchvision_resnet18.conv1.weight)
    torch.testing.assert_close(model.layer4[1].bn2.running_var,
                               torchvision_resnet18.layer4[1].bn2.running_var)


@pytest.mark.parametrize("name, kwargs, message", [
    ("resnet34", {}, r"do not fit this model \(missing \['layer1.2.conv1.weight'"),
    ("resnet18", {"stem": "small"}, "do not fit this model: size mismatch for conv1.weight"),
    ("resnet18", {"in_channels": 1}, "size mismatch for conv1.weight"),
])
def test_weights_from_another_architecture_are_a_user_error(pth_file, name, kwargs, message):
    with pytest.raises(UserError, match=message):
        create_model(name, weights_file=pth_file, **kwargs)


def test_unreadable_or_unsafe_weights_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        create_model("resnet18", weights_file=tmp_path / "missing.pth")
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(UserError, match="is not a readable weights file"):
        create_model("resnet18", weights_file=tmp_path / "notes.pth")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="is not a readable weights file"):
        create_model("resnet18", weights_file=tmp_path / "broken.safetensors")
    # A pickle that would run code when loaded: weights_only refuses it.
    (tmp_path / "evil.pth").write_bytes(pickle.dumps(UserError("boom"), protocol=2))
    with pytest.raises(UserError, match=r"holds Python objects \(cnnlab.errors.UserError\) "
                                        r"besides tensors; loading them could run code"):
        create_model("resnet18", weights_file=tmp_path / "evil.pth")
    torch.save({"epoch": 3}, tmp_path / "dict.pth")
    with pytest.raises(UserError, match="does not hold a state dict"):
        create_model("resnet18", weights_file=tmp_path / "dict.pth")


def test_torchvision_weights_offline_say_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UserError, match=r"could not download torchvision's resnet18 weights .*"
                                        r"https://download\.pytorch\.org/models/resnet18-.*\.pth "
                                        r"and pass it with --weights-file PATH"):
        create_model("resnet18", weights="torchvision")


def test_torchvision_weights_load_through_torch_hub_into_the_torchvision_layout(monkeypatch):
    theirs = torchvision.models.googlenet(weights=None, aux_logits=True, transform_input=True,
                                          init_weights=False).eval()
    asked = []
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda url, **kw: asked.append((url, kw)) or theirs.state_dict())
    ours = create_model("googlenet", weights="torchvision")
    assert asked[0][0].endswith("googlenet-1378be20.pth") and asked[0][1]["weights_only"]
    assert ours.transform_input and ours.inception3a.branch3[1].conv.kernel_size == (3, 3)
    same_outputs(ours, theirs)
    without_aux = create_model("googlenet", weights="torchvision", aux_logits=False)
    assert without_aux.aux1 is None  # its saved aux heads are skipped, not an error
    same_outputs(without_aux, theirs)


@pytest.mark.parametrize("name, weights, message", [
    ("lenet5", "torchvision", "torchvision has no pretrained weights for lenet5"),
    ("resnet18", "imagenet", "unknown weights 'imagenet'"),
])
def test_unavailable_weights_are_user_errors(name, weights, message):
    with pytest.raises(UserError, match=message):
        create_model(name, weights=weights)


def test_weights_and_a_weights_file_together_are_a_user_error(pth_file):
    with pytest.raises(UserError, match="not both"):
        create_model("resnet18", weights="torchvision", weights_file=pth_file)
