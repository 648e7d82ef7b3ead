"""GoogLeNet's 1x1 reductions (Szegedy et al. 2014, figure 2; lecture 003): the naive Inception
module (a) beside the one with dimension reductions (b), on the same input.

(a) runs the 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side on all the input
channels and concatenates them, so the expensive 3x3 and 5x5 see every channel and the pool
passes every channel on (the output only grows). (b) first squeezes the channels with 1x1
convolutions ('each filter has size 1x1x64, and performs a 64-dimensional dot product', 003)
and projects the pool's output down. The default numbers are the paper's inception (3a):
28x28x192 in; 64 1x1; 96 -> 128 3x3; 16 -> 32 5x5; pool projection 32. Its table gives
159K parameters and 128M operations for (b).

Both modules are real nn.Modules traced by `summary`, so the counts are the ones a forward
pass does, not a second copy of the arithmetic.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from .arithmetic import parse_size, whole


class Branches(nn.Module):
    """Runs its children on the same input and concatenates their outputs along channels."""

    def __init__(self, **branches: nn.Module):
        super().__init__()
        for name, branch in branches.items():
            self.add_module(name, branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def naive_module(c: int, n1: int, n3: int, n5: int) -> Branches:
    """Figure 2(a): every branch on all `c` channels; the pool keeps all of them."""
    return Branches(conv1x1=nn.Conv2d(c, n1, 1), conv3x3=nn.Conv2d(c, n3, 3, padding=1),
                    conv5x5=nn.Conv2d(c, n5, 5, padding=2),
                    pool=nn.MaxPool2d(3, stride=1, padding=1))


def reduced_module(c: int, n1: int, r3: int, n3: int, r5: int, n5: int, pool_proj: int) -> Branches:
    """Figure 2(b): 1x1 reductions before the 3x3 and 5x5, a 1x1 projection after the pool.
    (The paper puts a ReLU after every convolution; it costs no parameters, so it is left out.)"""
    return Branches(conv1x1=nn.Conv2d(c, n1, 1),
                    reduce3x3=nn.Sequential(nn.Conv2d(c, r3, 1), nn.Conv2d(r3, n3, 3, padding=1)),
                    reduce5x5=nn.Sequential(nn.Conv2d(c, r5, 1), nn.Conv2d(r5, n5, 5, padding=2)),
                    pool=nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c, pool_proj, 1)))


def _numbers(text, count: int, what: str) -> list[int]:
    parts = [p for p in str(text).split(",") if p.strip()]
    if len(parts) != count:
        raise UserError(f"{what} takes {count} comma-separated numbers, got '{text}'.")
    values = [whole(p, what) for p in parts]
    if min(values) < 1:
        raise UserError(f"{what} must be at least 1 each.")
    return values


def _measured(module: nn.Module, shape) -> dict:
    from .summary import summarize
    table = summarize(module, shape)
    convs = [r for r in table["layers"] if r["type"] == "Conv2d"]
    return {"params": table["total_params"], "macs": table["macs"],
            "output_shape": list(module(torch.zeros(1, *shape)).shape[1:]),
            "layers": [{"name": r["name"], "params": r["params"], "macs": r["macs"],
                        "output_shape": r["output_shape"]} for r in convs]}


def explain_inception(input="28x28x192", filters="64,128,32", reductions="96,16", pool_proj="32",
                      out=None) -> dict:
    """`cnnlab explain inception`: parameters and multiply-adds of (a) and (b)."""
    parts = str(input).lower().split("x")
    if len(parts) != 3:
        raise UserError(f"--input takes HxWxC, e.g. 28x28x192, got '{input}'.")
    (h, w), c = parse_size("x".join(parts[:2]), "input size"), whole(parts[2], "input channels")
    n1, n3, n5 = _numbers(filters, 3, "--filters (1x1, 3x3, 5x5)")
    r3, r5 = _numbers(reductions, 2, "--reductions (before the 3x3, before the 5x5)")
    proj = _numbers(pool_proj, 1, "--pool-proj")[0]
    shape = (c, h, w)
    if c * h * w > 2**24:  # one image runs through each module; keep that to ~64 MB
        raise UserError(f"a {h}x{w}x{c} input is too large to trace; Inception modules see "
                        "at most a few hundred channels of 28x28 or so.")
    naive, reduced = naive_module(c, n1, n3, n5), reduced_module(c, n1, r3, n3, r5, n5, proj)
    result = {"input": [h, w, c], "filters": [n1, n3, n5], "reductions": [r3, r5], "pool_proj": proj,
              "naive": _measured(naive, shape), "reduced": _measured(reduced, shape), "out": None}
    result["params_ratio"] = result["naive"]["params"] / result["reduced"]["params"]
    result["macs_ratio"] = result["naive"]["macs"] / result["reduced"]["macs"]
    if out:
        from .claims_figures import save_bars
        result["out"] = save_bars(
            {"parameters (thousands)": {k: result[k]["params"] / 1e3 for k in ("naive", "reduced")},
             "multiply-adds (millions)": {k: result[k]["macs"] / 1e6 for k in ("naive", "reduced")},
             "output channels": {k: result[k]["output_shape"][0] for k in ("naive", "reduced")}},
            out, f"Inception module on {h}x{w}x{c}: (a) naive vs (b) with 1x1 reductions", "")
    return result


def format_inception(result: dict) -> str:
    h, w, c = result["input"]
    lines = [f"Inception module on a {h}x{w}x{c} input (GoogLeNet, 003):"]
    for key, title in (("naive", "(a) naive"), ("reduced", "(b) with 1x1 reductions")):
        m = result[key]
        out_c, out_h, out_w = m["output_shape"]
        lines.append(f"{title}: {m['params']:,} parameters, {m['macs']:,} multiply-adds, "
                     f"output {out_h}x{out_w}x{out_c}")
        lines += [f"    {r['name']:<12} {'x'.join(map(str, r['output_shape'])):>12}  "
                  f"{r['params']:>9,} parameters  {r['macs']:>13,} multiply-adds" for r in m["layers"]]
    lines.append(f"the reductions cut parameters {result['params_ratio']:.2f}x and multiply-adds "
                 f"{result['macs_ratio']:.2f}x, and stop the pool branch from growing the output "
                 f"({result['naive']['output_shape'][0]} channels naive vs "
                 f"{result['reduced']['output_shape'][0]})")
    if result["out"]:
        lines.append(f"saved {result['out']}")
    return "\n".join(lines)
