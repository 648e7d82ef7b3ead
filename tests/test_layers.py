"""Each layer kind against its definition: the formula on the slide, computed the plain way."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import UserError
from cnnlab import layers as L

torch.manual_seed(0)


def reference_conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o, y, x] = b[o] + sum_{i,k,j} w[o, i, k, j] * x[n, i, s*y + d*k, s*x + d*j],
    one kernel tap at a time (003's formula; 004's 'local linear regression')."""
    x = F.pad(x, (padding,) * 4)
    n, c, h, w = x.shape
    out_c, in_per_group, kh, kw = weight.shape
    oh = (h - dilation * (kh - 1) - 1) // stride + 1
    ow = (w - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, out_c, oh, ow, dtype=x.dtype)
    out_per_group = out_c // groups
    for o in range(out_c):
        g = o // out_per_group
        for i in range(in_per_group):
            for k in range(kh):
                for j in range(kw):
                    patch = x[:, g * in_per_group + i, dilation * k::stride, dilation * j::stride]
                    out[:, o] += weight[o, i, k, j] * patch[:, :oh, :ow]
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def assert_matches_reference(conv, x, **settings):
    expected = reference_conv(x, conv.weight, conv.bias, **settings)
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


x6 = torch.randn(2, 4, 9, 9)


def test_standard_conv_is_the_slides_cross_correlation_and_keeps_size():
    conv = L.standard_conv(4, 6, kernel_size=3)
    assert conv(x6).shape == (2, 6, 9, 9)  # padding = kernel_size // 2 keeps the size (004)
    assert_matches_reference(conv, x6, padding=1)
    assert n_params(conv) == 3 * 3 * 4 * 6 + 6  # F*F*C_in*K + K (003)


def test_strided_conv_halves_the_resolution():
    conv = L.strided_conv(4, 6)
    assert conv(x6).shape == (2, 6, 5, 5)  # floor((9 + 2 - 3) / 2) + 1
    assert_matches_reference(conv, x6, stride=2, padding=1)


def test_dilated_conv_equals_a_5x5_kernel_with_gaps():
    conv = L.dilated_conv(4, 6, kernel_size=3, dilation=2)
    wide = torch.zeros(6, 4, 5, 5)
    wide[:, :, ::2, ::2] = conv.weight.detach()  # 9 weights spread over a 5x5 field (003)
    expected = F.conv2d(x6, wide, conv.bias, padding=2)
    torch.testing.assert_close(conv(x6), expected, atol=1e-5, rtol=1e-5)
    assert_matches_reference(conv, x6, padding=2, dilation=2)


def test_grouped_conv_is_separate_convolutions_on_channel_groups():
    conv = L.grouped_conv(4, 6, groups=2)
    halves = [F.conv2d(x6[:, 2 * g:2 * g + 2], conv.weight[3 * g:3 * g + 3],
                       conv.bias[3 * g:3 * g + 3], padding=1) for g in range(2)]
    torch.testing.assert_close(conv(x6), torch.cat(halves, 1), atol=1e-5, rtol=1e-5)
    assert n_params(conv) == 3 * 3 * 4 * 6 // 2 + 6
    with pytest.raises(UserError, match="groups=3 must divide"):
        L.grouped_conv(4, 6, groups=3)


def test_depthwise_conv_filters_each_channel_on_its_own():
    conv = L.depthwise_conv(4, kernel_size=3)
    out = conv(x6)
    for c in range(4):
        alone = F.conv2d(x6[:, c:c + 1], conv.weight[c:c + 1], conv.bias[c:c + 1], padding=1)
        torch.testing.assert_close(out[:, c:c + 1], alone, atol=1e-5, rtol=1e-5)


def test_pointwise_conv_mixes_channels_per_pixel():
    conv = L.pointwise_conv(4, 6)
    expected = torch.einsum("oi,nihw->nohw", conv.weight[:, :, 0, 0], x6) + conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(conv(x6), expected, atol=1e-5, rtol=1e-5)


def test_transposed_conv_is_the_adjoint_of_the_convolution():
    # <conv(x), y> = <x, conv_transpose(y)> with the same weights: 'transpose', not inverse (003).
    up = L.transposed_conv(6, 4, kernel_size=3, stride=2, padding=1, output_padding=1, bias=False)
    x, y = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)
    down = F.conv2d(x, up.weight, stride=2, padding=1)
    torch.testing.assert_close((down * y).sum(), (x * up(y)).sum(), atol=1e-4, rtol=1e-5)
    assert up(y).shape == (2, 4, 8, 8)  # (N - 1)S - 2P + F + OP = 3*2 - 2 + 3 + 1


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_padded_conv_matches_torchs_padding_modes(mode):
    ours = L.PaddedConv2d(4, 6, 3, padding_mode=mode)
    torchs = nn.Conv2d(4, 6, 3, padding=1, padding_mode=mode)
    torchs.load_state_dict(ours.state_dict())  # same parameters, same names
    torch.testing.assert_close(ours(x6), torchs(x6), atol=1e-5, rtol=1e-5)


def test_constant_padding_fills_the_border_with_the_value():
    conv = L.PaddedConv2d(1, 1, 3, padding_mode="constant", value=1.0, bias=False)
    nn.init.ones_(conv.weight)
    out = conv(torch.zeros(1, 1, 4, 4))
    assert out[0, 0, 0, 0] == 5   # a corner window holds 5 padded cells
    assert out[0, 0, 0, 1] == 3   # an edge window holds 3
    assert out[0, 0, 1, 1] == 0   # an inner window none
    with pytest.raises(UserError, match="unknown padding mode 'mirror'"):
        L.PaddedConv2d(1, 1, 3, padding_mode="mirror")


def test_spatially_separable_sobel_equals_the_full_kernel_it_factors():
    sep = L.SpatiallySeparableConv2d(1, 1, kernel_size=3, bias=False)
    with torch.no_grad():
        sep[0].weight.copy_(torch.tensor([1.0, 2.0, 1.0]).view(1, 1, 3, 1))   # column
        sep[1].weight.copy_(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3))  # row
    sobel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # 003's x filter
    image = torch.randn(1, 1, 10, 10)
    torch.testing.assert_close(sep.full_kernel()[0, 0], sobel_x)
    torch.testing.assert_close(sep(image), F.conv2d(image, sobel_x.view(1, 1, 3, 3), padding=1),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_spatially_separable_equals_one_convolution_with_its_full_kernel(stride):
    sep = L.SpatiallySeparableConv2d(4, 6, kernel_size=5, mid_channels=3, stride=stride)
    expected = F.conv2d(x6, sep.full_kernel(), sep[1].bias, stride=stride, padding=2)
    torch.testing.assert_close(sep(x6), expected, atol=1e-5, rtol=1e-5)
    assert n_params(sep) == 4 * 3 * 5 + 3 * 6 * 5 + 6  # 2k per channel pair, not k^2


def test_depthwise_separable_parameter_count_is_the_formula():
    for c_in, c_out, k in [(32, 64, 3), (3, 16, 5), (128, 128, 3)]:
        layer = L.DepthwiseSeparableConv2d(c_in, c_out, k)
        assert n_params(layer) == c_in * k * k + c_in + c_in * c_out + c_out
        assert n_params(layer) == L.DepthwiseSeparableConv2d.parameter_formula(c_in, c_out, k)
        assert n_params(L.DepthwiseSeparableConv2d(c_in, c_out, k, bias=False)) == c_in * (k * k + c_out)
    # MobileNet's saving: about 1/C_out + 1/k^2 of the standard convolution's weights.
    ratio = n_params(L.DepthwiseSeparableConv2d(128, 128, 3, bias=False)) / (128 * 128 * 9)
    assert ratio == pytest.approx(1 / 128 + 1 / 9)


def test_depthwise_separable_is_depthwise_then_pointwise():
    layer = L.DepthwiseSeparableConv2d(4, 6, 3)
    expected = layer[1](F.conv2d(x6, layer[0].weight, layer[0].bias, padding=1, groups=4))
    torch.testing.assert_close(layer(x6), expected)
    assert layer(x6).shape == (2, 6, 9, 9)


def test_deformable_conv_starts_as_a_standard_convolution_and_samples_at_offsets():
    deform = L.DeformableConv2d(4, 6, 3)
    plain = F.conv2d(x6, deform.conv.weight, deform.conv.bias, padding=1)
    torch.testing.assert_close(deform(x6), plain, atol=1e-5, rtol=1e-5)
    # Every tap moved one pixel right (offsets are (dy, dx) pairs per tap): the output is the
    # plain convolution one column to the right, away from the border.
    offset = torch.zeros(2, 18, 9, 9)
    offset[:, 1::2] = 1.0
    shifted = deform.conv(x6, offset)
    torch.testing.assert_close(shifted[..., 1:-2], plain[..., 2:-1], atol=1e-5, rtol=1e-5)
    loss = deform(x6).sum()
    loss.backward()
    assert deform.offset.weight.grad is not None  # the offsets are learned


def test_make_conv_by_kind_name():
    assert isinstance(L.make_conv("deformable", 4, 6), L.DeformableConv2d)
    assert L.make_conv("dilated", 4, 6, dilation=3).dilation == (3, 3)
    assert set(L.CONVOLUTIONS) >= {"standard", "strided", "padded", "dilated", "grouped",
                                   "depthwise", "pointwise", "transposed", "separable",
                                   "depthwise_separable", "deformable"}
    with pytest.raises(UserError, match="unknown convolution kind 'atrous'"):
        L.make_conv("atrous", 4, 6)


# --- pooling -------------------------------------------------------------------------------

LECTURE_IMAGE = torch.tensor([[2, 5, 8, 7, 9, 8], [1, 3, 4, 2, 8, 3], [0, 4, 1, 2, 1, 4],
                              [3, 3, 8, 7, 5, 1], [4, 1, 2, 2, 9, 2], [5, 1, 3, 7, 4, 8]],
                             dtype=torch.float32).view(1, 1, 6, 6)


def test_max_pool_reproduces_the_lectures_worked_example():
    # 001, 'Pooling layers': 2x2 max pooling with a stride of 2 of the 6x6 image.
    out = L.max_pool(2)(LECTURE_IMAGE)
    assert out[0, 0].tolist() == [[5, 8, 9], [4, 8, 5], [5, 7, 9]]


def test_avg_pool_is_the_window_mean_and_overlapping_max_pool_uses_every_window():
    x = torch.randn(2, 3, 7, 7)
    windows = x.unfold(2, 3, 2).unfold(3, 3, 2)  # 3x3 windows every 2 pixels (AlexNet)
    torch.testing.assert_close(L.max_pool(3, stride=2)(x), windows.amax(dim=(-2, -1)))
    torch.testing.assert_close(L.avg_pool(3, stride=2)(x), windows.mean(dim=(-2, -1)))


def test_global_and_adaptive_pooling_fix_the_output_size():
    x = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(L.GlobalAvgPool2d()(x), x.mean(dim=(2, 3)))
    assert L.GlobalAvgPool2d(flatten=False)(x).shape == (2, 3, 1, 1)
    # 12 -> 4: windows of 3 every 3 pixels, whatever the input size
    torch.testing.assert_close(L.adaptive_avg_pool(4)(x), L.avg_pool(3)(x))
    torch.testing.assert_close(L.adaptive_max_pool(4)(x), L.max_pool(3)(x))
    assert L.make_pool("adaptive_avg", (2, 5))(torch.randn(1, 1, 9, 13)).shape == (1, 1, 2, 5)
    with pytest.raises(UserError, match="unknown pooling kind"):
        L.make_pool("median")


# --- normalisation -------------------------------------------------------------------------

def normalised(x, dims):
    var, mean = torch.var_mean(x, dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


xn = torch.randn(8, 6, 5, 5) * 3 + 2


def test_batch_layer_instance_group_norm_share_statistics_as_their_definitions_say():
    torch.testing.assert_close(L.make_norm("batch", 6)(xn), normalised(xn, (0, 2, 3)), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(L.make_norm("layer", 6)(xn), normalised(xn, (1, 2, 3)), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(L.make_norm("instance", 6)(xn), normalised(xn, (2, 3)), atol=1e-5, rtol=1e-4)
    x = torch.randn(4, 64, 3, 3)
    grouped = normalised(x.view(4, 32, 2, 3, 3), (2, 3, 4)).view_as(x)  # 32 groups of 2 (Wu & He)
    torch.testing.assert_close(L.make_norm("group", 64)(x), grouped, atol=1e-5, rtol=1e-4)
    assert isinstance(L.make_norm("none", 6), nn.Identity)


def test_group_count_prefers_32_groups():
    assert [L.group_count(c) for c in (64, 512, 48, 16, 6)] == [32, 32, 24, 16, 6]


def test_norm_factory_by_name_or_callable():
    assert isinstance(L.norm_layer("switchable")(8), L.SwitchableNorm2d)
    assert L.make_norm("batch", 8, eps=1e-3).eps == 1e-3
    injected = L.make_norm(functools.partial(nn.GroupNorm, 2), 8)
    assert isinstance(injected, nn.GroupNorm) and injected.num_groups == 2
    with pytest.raises(UserError, match="unknown norm 'batchnorm'; choose one of: batch, group"):
        L.make_norm("batchnorm", 8)


def _select(sn: L.SwitchableNorm2d, which: int) -> None:
    """Softmax weights of (almost exactly) one-hot on instance (0), layer (1) or batch (2)."""
    logits = torch.full((3,), -40.0)
    logits[which] = 40.0
    with torch.no_grad():
        sn.mean_weight.copy_(logits)
        sn.var_weight.copy_(logits)


def test_switchable_norm_selecting_batch_statistics_is_batch_norm_in_training_and_evaluation():
    sn, bn = L.SwitchableNorm2d(6), nn.BatchNorm2d(6)
    _select(sn, 2)
    with torch.no_grad():
        sn.weight.uniform_(0.5, 2)
        sn.bias.uniform_(-1, 1)
    bn.load_state_dict({k: v for k, v in sn.state_dict().items() if k in bn.state_dict()}, strict=False)
    for _ in range(3):
        batch = torch.randn(8, 6, 5, 5) * 2 + 1
        torch.testing.assert_close(sn(batch), bn(batch), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(sn.running_mean, bn.running_mean)
    torch.testing.assert_close(sn.running_var, bn.running_var)
    sn.eval(), bn.eval()
    torch.testing.assert_close(sn(xn), bn(xn), atol=1e-5, rtol=1e-4)


def test_switchable_norm_selecting_instance_or_layer_statistics_is_that_norm():
    sn = L.SwitchableNorm2d(6)
    _select(sn, 0)
    torch.testing.assert_close(sn(xn), normalised(xn, (2, 3)), atol=1e-5, rtol=1e-4)
    _select(sn, 1)
    torch.testing.assert_close(sn(xn), normalised(xn, (1, 2, 3)), atol=1e-5, rtol=1e-4)


def test_switchable_norm_blends_means_and_variances_with_learned_softmax_weights():
    sn = L.SwitchableNorm2d(6)
    with torch.no_grad():
        sn.mean_weight.copy_(torch.tensor([0.3, -1.0, 0.5]))
        sn.var_weight.copy_(torch.tensor([-0.2, 0.8, 0.1]))
    wm, wv = sn.mean_weight.softmax(0).detach(), sn.var_weight.softmax(0).detach()
    stats = [torch.var_mean(xn, dim=d, unbiased=False, keepdim=True) for d in ((2, 3), (1, 2, 3), (0, 2, 3))]
    mean = sum(w * m for w, (_, m) in zip(wm, stats))
    var = sum(w * v for w, (v, _) in zip(wv, stats))
    torch.testing.assert_close(sn(xn), (xn - mean) / torch.sqrt(var + 1e-5), atol=1e-5, rtol=1e-4)
    sn(xn).pow(2).mean().backward()
    assert sn.mean_weight.grad.abs().sum() > 0 and sn.var_weight.grad.abs().sum() > 0


def test_local_response_norm_is_the_alexnet_formula():
    a = torch.randn(2, 7, 3, 3) * 10
    b = L.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)(a)
    expected = torch.empty_like(a)
    for i in range(7):  # b_i = a_i / (k + alpha * sum_{j = i-2..i+2} a_j^2)^beta (sec. 3.3)
        near = a[:, max(0, i - 2):min(7, i + 3)]
        expected[:, i] = a[:, i] / (2.0 + 1e-4 * near.pow(2).sum(1)) ** 0.75
    torch.testing.assert_close(b, expected)


def test_weight_norm_separates_length_and_direction():
    conv = nn.Conv2d(4, 6, 3)
    before = conv(x6)
    L.weight_norm(conv)
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    norms = v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(conv.weight, g * v / norms)  # w = g v / ||v||
    torch.testing.assert_close(conv(x6), before, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        g.mul_(2)
    torch.testing.assert_close(conv.weight.flatten(1).norm(dim=1), 2 * norms.flatten())


def test_conv_norm_act_has_a_bias_only_without_a_norm():
    block = L.ConvNormAct(3, 8, norm="group", activation="relu")
    assert [name for name, _ in block.named_children()] == ["conv", "norm", "act"]
    assert block.conv.bias is None and isinstance(block.norm, nn.GroupNorm)
    assert block(torch.randn(2, 3, 6, 6)).min() >= 0
    plain = L.ConvNormAct(3, 8, stride=2, norm="none", activation="tanh")
    assert plain.conv.bias is not None and plain(torch.randn(2, 3, 6, 6)).shape == (2, 8, 3, 3)
    with pytest.raises(UserError, match="unknown activation 'swishy'"):
        L.ConvNormAct(3, 8, activation="swishy")
