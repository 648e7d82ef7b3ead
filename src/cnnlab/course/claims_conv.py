"""Three small facts of CS428 lecture 4 (002), computed rather than asserted.

- 'we tend to lose pixels on the perimeter of our image ... pixel utilization for convolutions
  of size 1x1, 2x2, and 3x3': how many windows use each input pixel (`explain border`);
- 'Convolution is a linear operation. Therefore, we need a nonlinearity, otherwise 2
  convolution layers would be no more powerful than 1': the one kernel two convolutions make
  (`explain collapse`);
- 'estimating the gradient at the kernel weights': dL/dK is itself a cross-correlation, of the
  input with dL/dY (`explain kernel-gradient`).

Everything runs in float64 so that "equal" means equal to rounding (1e-12), not to float32's
1e-6.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError
from .arithmetic import parse_size, whole
from .inline import parse_matrices

DTYPE = torch.float64


def _kernel_sizes(values) -> list[int]:
    sizes = [whole(v, "kernel size") for v in ([values] if isinstance(values, (int, str)) else values)]
    if not sizes or min(sizes) < 1:
        raise UserError("kernel sizes must be whole numbers of at least 1.")
    return sizes


# ----------------------------------------------------------------------------- border

def usage_counts(height: int, width: int, kernel_size: int, padding: int = 0) -> torch.Tensor:
    """How many k x k windows (stride 1) cover each input pixel: every output position stamps
    a k x k block of ones back onto the padded input, which is conv_transpose2d of ones."""
    out_h, out_w = height + 2 * padding - kernel_size + 1, width + 2 * padding - kernel_size + 1
    if out_h < 1 or out_w < 1:
        raise UserError(f"a {kernel_size}x{kernel_size} kernel does not fit a {height}x{width} "
                        f"input with padding {padding}.")
    ones = torch.ones(1, 1, out_h, out_w, dtype=DTYPE)
    counts = F.conv_transpose2d(ones, torch.ones(1, 1, kernel_size, kernel_size, dtype=DTYPE),
                                padding=padding)
    return counts[0, 0]


def _per_axis(n: int, k: int, p: int) -> list[int]:
    """The same count by hand along one axis: the window starts s in [-p, n + p - k] whose
    k positions include i."""
    return [sum(1 for s in range(-p, n + p - k + 1) if s <= i < s + k) for i in range(n)]


def explain_border(size="6", kernel_size=("1", "2", "3"), padding="0", out=None) -> dict:
    """`cnnlab explain border`: the usage map of every pixel, per kernel size."""
    height, width = parse_size(size, "input size")
    pad = whole(padding, "padding")
    maps = []
    for k in _kernel_sizes(kernel_size):
        counts = usage_counts(height, width, k, pad)
        by_hand = torch.tensor([[a * b for b in _per_axis(width, k, pad)]
                                for a in _per_axis(height, k, pad)], dtype=DTYPE)
        if not torch.equal(counts, by_hand):  # a cnnlab bug, never a user's mistake
            raise RuntimeError("the usage counts disagree with the per-axis arithmetic")
        maps.append({"kernel_size": k, "counts": counts.long().tolist(),
                     "corner": int(counts[0, 0]), "centre": int(counts[height // 2, width // 2]),
                     "most": int(counts.max()), "output_size": [height + 2 * pad - k + 1,
                                                                width + 2 * pad - k + 1],
                     "share_of_full_use": float((counts == counts.max()).double().mean())})
    result = {"input_size": [height, width], "padding": pad, "maps": maps, "out": None}
    if out:
        from .claims_figures import save_panels
        result["out"] = save_panels([[(f"{m['kernel_size']}x{m['kernel_size']}, padding {pad}",
                                       torch.tensor(m["counts"]).numpy()) for m in maps]], out,
                                    "how many windows use each input pixel (002)")
    return result


def format_border(result: dict) -> str:
    h, w = result["input_size"]
    lines = [f"windows (stride 1, padding {result['padding']}) that use each pixel of a {h}x{w} input:"]
    for m in result["maps"]:
        k = m["kernel_size"]
        width = len(str(m["most"]))
        lines.append(f"{k}x{k} kernel: output {m['output_size'][0]}x{m['output_size'][1]}; corner "
                     f"used {m['corner']} time(s), centre {m['centre']}, at most {m['most']}; "
                     f"{m['share_of_full_use']:.0%} of the pixels are used fully")
        lines += ["  " + " ".join(str(v).rjust(width) for v in row) for row in m["counts"]]
    lines.append("the perimeter is used least: each layer without padding also shrinks the map "
                 "by k-1, so the loss adds up over many layers (002, 'Extension: Padding')"
                 if not result["padding"] else
                 "padding lets the windows reach past the edge, so the border pixels are used more "
                 "often (and with p = (k-1)/2 for odd k the output keeps the input's size)")
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- collapse

def compose_kernels(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The one kernel (C3 x C1 x (k1+k2-1)^2) doing cross-correlation by `first` (C2 x C1 x k1
    x k1) then by `second` (C3 x C2 x k2 x k2): (K2 * (K1 * x))[u] = sum over a, b of K2[a]
    K1[b] x[u + a + b], so tap t of the composite sums K2[a] K1[t - a] (a true convolution of
    the two kernels, summed over the middle channels)."""
    k1, k2 = first.shape[-1], second.shape[-1]
    composed = first.new_zeros(second.shape[0], first.shape[1], k1 + k2 - 1, k1 + k2 - 1)
    for a in range(k2):
        for b in range(k2):
            composed[:, :, a:a + k1, b:b + k1] += torch.einsum("om,mihw->oihw", second[:, :, a, b], first)
    return composed


def explain_collapse(size="12", channels="3,4,2", kernel_size=("3", "3"), seed="0", out=None) -> dict:
    """`cnnlab explain collapse`: conv(conv(x)) with no non-linearity between is one conv
    with the composed kernel and bias; with a ReLU between, that kernel no longer fits."""
    height, width = parse_size(size, "input size")
    c1, c2, c3 = _channels(channels)
    sizes = _kernel_sizes(kernel_size)
    if len(sizes) != 2:
        raise UserError("give two kernel sizes, one per convolution, e.g. --kernel-size 3 3.")
    k1, k2 = sizes
    if min(height, width) < k1 + k2 - 1:
        raise UserError(f"the input must be at least {k1 + k2 - 1} pixels on each side for a "
                        f"{k1}x{k1} then a {k2}x{k2} kernel.")
    gen = torch.Generator().manual_seed(whole(seed, "seed"))
    x = torch.randn(1, c1, height, width, generator=gen, dtype=DTYPE)
    w1, b1 = torch.randn(c2, c1, k1, k1, generator=gen, dtype=DTYPE), torch.randn(c2, generator=gen, dtype=DTYPE)
    w2, b2 = torch.randn(c3, c2, k2, k2, generator=gen, dtype=DTYPE), torch.randn(c3, generator=gen, dtype=DTYPE)
    composed = compose_kernels(w1, w2)
    bias = b2 + torch.einsum("omhw,m->o", w2, b1)  # the first bias, carried through the second kernel
    in_turn = F.conv2d(F.conv2d(x, w1, b1), w2, b2)
    at_once = F.conv2d(x, composed, bias)
    with_relu = F.conv2d(F.relu(F.conv2d(x, w1, b1)), w2, b2)
    result = {"input_shape": [c1, height, width], "kernel_sizes": [k1, k2],
              "composed_kernel_size": k1 + k2 - 1, "output_shape": list(in_turn.shape[1:]),
              "params_two_layers": w1.numel() + b1.numel() + w2.numel() + b2.numel(),
              "params_one_layer": composed.numel() + bias.numel(),
              "max_abs_difference": float((in_turn - at_once).abs().max()),
              "max_abs_difference_with_relu": float((with_relu - at_once).abs().max()),
              "output_scale": float(in_turn.abs().max()),
              "composed_kernel": composed[0, 0].tolist(), "out": None}
    if out:
        from .claims_figures import save_panels
        result["out"] = save_panels([
            [("kernel 1 (out 0, in 0)", w1[0, 0].numpy()), ("kernel 2 (out 0, in 0)", w2[0, 0].numpy()),
             (f"composed {k1 + k2 - 1}x{k1 + k2 - 1} (out 0, in 0)", composed[0, 0].numpy())],
            [("two convolutions in turn", in_turn[0, 0].numpy()), ("one composed convolution", at_once[0, 0].numpy()),
             ("ReLU between minus composed", (with_relu - at_once)[0, 0].numpy())]], out,
            "two linear convolutions are one convolution (002)", symmetric=True)
    return result


def _channels(text) -> tuple[int, int, int]:
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    if len(parts) != 3:
        raise UserError(f"--channels takes three numbers C_in,C_mid,C_out, got '{text}'.")
    values = tuple(whole(p, "a channel count") for p in parts)
    if min(values) < 1:
        raise UserError("channel counts must be at least 1.")
    return values


def format_collapse(result: dict) -> str:
    k1, k2 = result["kernel_sizes"]
    k = result["composed_kernel_size"]
    c = result["input_shape"]
    lines = [f"a {k1}x{k1} convolution then a {k2}x{k2} one, no non-linearity between, on a "
             f"{c[0]}x{c[1]}x{c[2]} input, is one {k}x{k} convolution: kernel[o,i] = sum over m "
             f"of K2[o,m] convolved with K1[m,i]; bias = b2 + sum of K2 times b1",
             f"  largest |difference| between the two layers and the one: "
             f"{result['max_abs_difference']:.3g} (outputs up to {result['output_scale']:.3g})",
             f"  parameters: {result['params_two_layers']:,} in two layers, "
             f"{result['params_one_layer']:,} in the one that does the same",
             f"  with a ReLU between them the same single kernel misses by up to "
             f"{result['max_abs_difference_with_relu']:.3g}: the non-linearity is what makes depth "
             f"worth having (002, 'Activation Function')"]
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- kernel gradient

def kernel_gradient_by_correlation(x: torch.Tensor, grad_out: torch.Tensor, kernel_size: int,
                                   stride: int = 1, padding: int = 0) -> torch.Tensor:
    """dL/dK[o, i, a, b] = sum over n, u, v of x_pad[n, i, s*u + a, s*v + b] dL/dY[n, o, u, v]:
    the input cross-correlated with the output gradient, whose taps lie `stride` apart (a
    dilated kernel). The batch becomes the channel axis the correlation sums over."""
    x = F.pad(x, (padding,) * 4)
    grad = F.conv2d(x.transpose(0, 1), grad_out.transpose(0, 1), dilation=stride)
    return grad[:, :, :kernel_size, :kernel_size].transpose(0, 1)


def _autograd_and_correlation(x, weight, grad_out, stride, padding):
    weight = weight.clone().requires_grad_(True)
    y = F.conv2d(x, weight, stride=stride, padding=padding)
    if y.shape != grad_out.shape:
        raise UserError(f"dL/dY must have the output's shape {tuple(y.shape[2:])}, "
                        f"got {tuple(grad_out.shape[2:])}.")
    y.backward(grad_out)  # L = sum(Y * dL/dY): any loss whose gradient at Y is grad_out
    return weight.grad, kernel_gradient_by_correlation(x, grad_out, weight.shape[-1], stride, padding)


def explain_kernel_gradient(input="0 1 2; 3 4 5; 6 7 8", kernel="0 1; 2 3", grad_output=None,
                            stride="1", padding="0", seed="0", out=None) -> dict:
    """`cnnlab explain kernel-gradient`: dL/dK by autograd and as a correlation, on the slide's
    3x3 input and 2x2 kernel (002) and on a random batch with several channels."""
    x = torch.tensor(parse_matrices(input, "the input"), dtype=DTYPE)[None]
    k = torch.tensor(parse_matrices(kernel, "the kernel"), dtype=DTYPE)
    if k.shape[-1] != k.shape[-2]:
        raise UserError("the kernel must be square here, e.g. '0 1; 2 3'.")
    s, p = whole(stride, "stride"), whole(padding, "padding")
    if s < 1 or p < 0:
        raise UserError("stride must be at least 1 and padding at least 0.")
    weight = k[None] if k.shape[0] == x.shape[1] else k[None].expand(1, x.shape[1], *k.shape[1:]).clone()
    out_hw = [(n + 2 * p - k.shape[-1]) // s + 1 for n in x.shape[2:]]
    if min(out_hw) < 1:
        raise UserError("the kernel does not fit the padded input.")
    grad_out = (torch.ones(1, 1, *out_hw, dtype=DTYPE) if grad_output is None else
                torch.tensor(parse_matrices(grad_output, "dL/dY"), dtype=DTYPE)[None])
    by_autograd, by_correlation = _autograd_and_correlation(x, weight, grad_out, s, p)
    gen = torch.Generator().manual_seed(whole(seed, "seed"))
    bx = torch.randn(4, 3, 16, 16, generator=gen, dtype=DTYPE)
    bw = torch.randn(5, 3, 3, 3, generator=gen, dtype=DTYPE)
    checks = []
    for cs, cp in ((1, 0), (1, 1), (2, 1)):
        hw = (16 + 2 * cp - 3) // cs + 1
        g = torch.randn(4, 5, hw, hw, generator=gen, dtype=DTYPE)
        a, c = _autograd_and_correlation(bx, bw, g, cs, cp)
        checks.append({"stride": cs, "padding": cp, "max_abs_difference": float((a - c).abs().max()),
                       "gradient_scale": float(a.abs().max())})
    result = {"input": x[0].tolist(), "kernel": weight[0].tolist(), "grad_output": grad_out[0].tolist(),
              "stride": s, "padding": p, "by_autograd": by_autograd[0].tolist(),
              "by_correlation": by_correlation[0].tolist(),
              "max_abs_difference": float((by_autograd - by_correlation).abs().max()),
              "batch_checks": checks, "out": None}
    if out:
        from .claims_figures import save_panels
        result["out"] = save_panels([[("input", x[0, 0].numpy()), ("dL/dY", grad_out[0, 0].numpy()),
                                      ("dL/dK by autograd", by_autograd[0, 0].numpy()),
                                      ("input correlated with dL/dY", by_correlation[0, 0].numpy())]],
                                    out, "the kernel gradient is a cross-correlation (002)")
    return result


def format_kernel_gradient(result: dict) -> str:
    from .inline import grid_text
    lines = [f"L = sum(Y * dL/dY) with Y = input cross-correlated with K (stride {result['stride']}, "
             f"padding {result['padding']}); input:", grid_text(result["input"][0]),
             "dL/dY:", grid_text(result["grad_output"][0]),
             "dL/dK by autograd:", grid_text(result["by_autograd"][0]),
             "dL/dK as the input cross-correlated with dL/dY"
             + (f" (its taps {result['stride']} apart)" if result["stride"] > 1 else "") + ":",
             grid_text(result["by_correlation"][0]),
             f"largest |difference|: {result['max_abs_difference']:.3g}",
             "on a random batch of 4 images, 3 -> 5 channels, 3x3 kernels:"]
    lines += [f"  stride {c['stride']}, padding {c['padding']}: largest |difference| "
              f"{c['max_abs_difference']:.3g} (gradients up to {c['gradient_scale']:.3g})"
              for c in result["batch_checks"]]
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)
