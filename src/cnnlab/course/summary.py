"""Model summary: every layer a forward pass runs, with its shape, parameters, multiply-adds and
receptive field (CS428 lecture 4, 002: parameter counts and receptive fields; 003: 'VGG16 has
138M parameters', 'a stack of 3x3 filters has the same receptive field as 7x7').

Two independent accounts are kept and compared. A real forward pass is traced: module hooks give
the rows (name, type, parameters) in execution order, branches of residual and inception blocks
included, and a TorchFunctionMode sees every functional call, so F.max_pool2d inside a forward
and the `out += identity` of a residual block are seen too. For each convolution and pooling
call the formulas of `course.arithmetic` predict the output size, and for each convolution
module its parameter count; any disagreement with what the forward pass produced raises
FormulaMismatch rather than printing a wrong table.

Receptive fields follow the tensors: each 4-D tensor carries its geometry (receptive.py).
Where paths merge (a sum, a concatenation) the result sees the hull of its inputs' windows,
which is the largest receptive field of the paths when they are centred alike (ResNet,
Inception). Channel gates that broadcast a 1x1 map (squeeze-excitation) are left out of the
merge, otherwise every later receptive field would be the whole image. A spatial operation
cnnlab has no formula for (interpolation, for example) makes the receptive field unknown
from there on, shown as '?', never guessed.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from ..logs import LOGGER

from . import functional_rules as rules
from ..errors import UserError
from .arithmetic import Layer, param_count
from .receptive import UNKNOWN, Geometry, merge, number

DEFAULT_INPUT = (3, 224, 224)  # what torchvision's ImageNet models expect


class FormulaMismatch(RuntimeError):
    """The arithmetic and the traced forward pass disagree: a bug in cnnlab, never hidden."""


@dataclass
class Row:
    name: str
    type: str
    output_shape: list[int] | None = None
    trainable_params: int = 0
    frozen_params: int = 0
    macs: int = 0
    geometry: Geometry | str | None = None
    shared: bool = False

    def to_json(self) -> dict:
        geometry = self.geometry.to_json() if isinstance(self.geometry, Geometry) else {}
        return {"name": self.name, "type": self.type, "output_shape": self.output_shape,
                "params": self.trainable_params + self.frozen_params,
                "trainable_params": self.trainable_params, "frozen_params": self.frozen_params,
                "macs": self.macs, "receptive_field": geometry.get("rf"),
                "jump": geometry.get("jump"), "start": geometry.get("start"), "shared": self.shared}


def _tensors(value):
    """Every tensor inside nested tuples, lists and dicts (an op's arguments or results)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


@dataclass
class _Trace:
    """What the forward pass has shown so far: rows, each tensor's geometry, where we are."""
    geometry: WeakIdKeyDictionary = field(default_factory=WeakIdKeyDictionary)
    rows: list[Row] = field(default_factory=list)
    names: list[str] = field(default_factory=list)       # module call stack
    open_layer: Row | None = None                         # the row of the layer running now
    open_module: nn.Module | None = None
    seen_params: set[int] = field(default_factory=set)
    seen_modules: set[int] = field(default_factory=set)
    output: Row | None = None                             # the model's output, when a feature map

    def known(self, tensor) -> Geometry | str | None:
        return self.geometry.get(tensor) if tensor.dim() >= 4 else None


class _FunctionTracer(TorchFunctionMode):
    """Sees every torch call; gives each 4-D result a geometry and checks spatial formulas."""

    def __init__(self, trace: _Trace):
        super().__init__()
        self.trace = trace

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = rules.RULES.get(func)
        source = args[0] if args else kwargs.get("input")
        # spatial rules need a C x H x W map; F.linear applies to vectors too
        if rule is not None and isinstance(source, torch.Tensor) and (
                source.dim() >= 3 or not rules.is_spatial(func)):
            rest = {k: v for k, v in kwargs.items() if k != "input"}
            self._apply(rule, func, source, args[1:], rest, out)
        else:
            self._propagate(func, args, kwargs, out)
        return out

    def _apply(self, rule, func, source, args, kwargs, out) -> None:
        result = next(_tensors(out))
        try:
            step = rule(source, result, *args, **kwargs)
        except rules.Disagreement as exc:
            where = self.trace.open_layer.name if self.trace.open_layer else ".".join(self.trace.names)
            raise FormulaMismatch(f"{where or 'model'}: {exc}") from None
        before = self.trace.known(source)
        if result.dim() >= 4 and before is not None:
            self.trace.geometry[result] = (step.transform(before) if isinstance(before, Geometry)
                                           and step.transform else before)
        self._count(func, step.macs, result)

    def _count(self, func, macs: int, out, force: bool = False) -> None:
        if self.trace.open_layer is not None:
            self.trace.open_layer.macs += macs
        elif force or rules.is_spatial(func) or macs:
            # a functional layer called straight from a forward (inception's F.max_pool2d)
            parent = self.trace.names[-1] if self.trace.names else ""
            name = getattr(func, "__name__", "op")
            self.trace.rows.append(Row(f"{parent}.{name}" if parent else name, f"F.{name}",
                                       list(out.shape[1:]), macs=macs, geometry=self.trace.known(out)))

    def _propagate(self, func, args, kwargs, out) -> None:
        """Shape-keeping ops (sums, concatenations, norms, activations) merge the geometry of
        their inputs of the same spatial size; an op that resizes without a rule loses it,
        and when it runs outside any layer it gets a row so the table shows where."""
        sources = [(t, self.trace.geometry[t]) for t in _tensors((args, kwargs))
                   if t.dim() >= 4 and t in self.trace.geometry]
        if not sources:
            return
        for tensor in _tensors(out):
            if tensor.dim() < 4:
                continue
            same = [g for t, g in sources if t.shape[-2:] == tensor.shape[-2:]]
            self.trace.geometry[tensor] = UNKNOWN if not same or UNKNOWN in same else merge(same)
            if not same and self.trace.open_layer is None:
                self._count(func, 0, tensor, force=True)


# ----------------------------------------------------------------------------- module rows

def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _owns_parameters(module: nn.Module) -> bool:
    """A container with parameters of its own (ConvNeXt's layer scale) gets a row for them."""
    return not _is_leaf(module) and next(module.parameters(recurse=False), None) is not None


def _module_layer(module: nn.Module) -> Layer | None:
    """The arithmetic's view of a convolution module, to check its parameter count."""
    if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return None
    transposed = isinstance(module, nn.ConvTranspose2d)
    return Layer("conv_transpose" if transposed else "conv", module.kernel_size, module.stride,
                 groups=module.groups, in_channels=module.in_channels,
                 out_channels=module.out_channels, bias=module.bias is not None)


def _expected_params(module: nn.Module) -> int | None:
    layer = _module_layer(module)
    if layer is not None:
        return param_count(layer)
    if isinstance(module, nn.Linear):
        return module.out_features * (module.in_features + (module.bias is not None))
    return None


def _open_row(trace: _Trace, name: str, module: nn.Module) -> None:
    row = Row(name or type(module).__name__, type(module).__name__, shared=id(module) in trace.seen_modules)
    params = [p for p in module.parameters(recurse=_is_leaf(module)) if id(p) not in trace.seen_params]
    trace.seen_params.update(id(p) for p in params)
    trace.seen_modules.add(id(module))
    row.trainable_params = sum(p.numel() for p in params if p.requires_grad)
    # Weights fitted from data rather than learned are buffers (layers/whitening.py): they
    # count as frozen, as the layer's formula says they are there.
    fitted = [b for n, b in module.named_buffers(recurse=False) if n in ("weight", "bias")]
    row.frozen_params = (sum(p.numel() for p in params if not p.requires_grad)
                         + (0 if row.shared else sum(b.numel() for b in fitted)))
    expected = _expected_params(module)
    if not row.shared and expected is not None and expected != row.trainable_params + row.frozen_params:
        raise FormulaMismatch(f"{row.name}: the parameter formula gives {expected}, "
                              f"the module holds {row.trainable_params + row.frozen_params}")
    trace.open_layer, trace.open_module = row, module


def _install_hooks(model: nn.Module, trace: _Trace) -> list:
    def enter(name, module, _module, _args):
        trace.names.append(name)
        if trace.open_layer is None and _is_leaf(module):
            _open_row(trace, name, module)

    def leave(name, module, _module, _args, output):
        trace.names.pop()
        if trace.open_layer is None and _owns_parameters(module):
            _open_row(trace, name, module)  # opened late: its children already have rows
        if trace.open_layer is not None and trace.open_module is module:
            result = next(_tensors(output), None)
            row = trace.open_layer
            if result is not None:
                row.output_shape, row.geometry = list(result.shape[1:]), trace.known(result)
            trace.rows.append(row)
            trace.open_layer = trace.open_module = None

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name, mod=module: enter(n, mod, m, a)))
        handles.append(module.register_forward_hook(
            lambda m, a, o, n=name, mod=module: leave(n, mod, m, a, o), always_call=True))
    return handles


# ----------------------------------------------------------------------------- running it

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


def trace_model(model: nn.Module, input_shape) -> _Trace:
    """One forward pass of a zero image of `input_shape` (C, H, W), in eval mode, hooked."""
    trace = _Trace()
    like = next((t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()), None)
    x = torch.zeros(1, *input_shape) if like is None else torch.zeros(
        1, *input_shape, dtype=like.dtype, device=like.device)  # the model's own dtype and device
    trace.geometry[x] = Geometry()
    handles, was_training = _install_hooks(model, trace), model.training
    try:
        with torch.no_grad(), _FunctionTracer(trace):
            output = next(_tensors(model.eval()(x)), None)
        if output is not None and output.dim() == 4 and output.shape[-2:].numel() > 1:
            # the model ends in a feature map: it, not the last layer's, is what the model sees
            trace.output = Row("(output)", "output", list(output.shape[1:]), geometry=trace.known(output))
    except FormulaMismatch:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
        shape = "x".join(map(str, input_shape))
        raise UserError(f"the model cannot run on a {shape} input: {_first_line(exc)}.") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return trace


def _final_receptive_field(rows: list[Row]):
    """The last feature map bigger than 1x1: global pooling would otherwise report a window
    wider than the image, which describes the pooling rather than the features."""
    for row in reversed(rows):
        shape = row.output_shape or []
        if len(shape) == 3 and shape[1] * shape[2] > 1:
            return number(max(row.geometry.rf)) if isinstance(row.geometry, Geometry) else None
    return None


def summarize(model: nn.Module, input_shape=DEFAULT_INPUT, name: str | None = None) -> dict:
    """Rows in execution order and totals, as `cnnlab summary --json` prints them."""
    trace = trace_model(model, tuple(input_shape))
    rows = trace.rows
    params = list(model.parameters())  # shared parameters appear once here
    total = sum(p.numel() for p in params)
    counted = sum(r.trainable_params + r.frozen_params for r in rows)
    return {"model": name or type(model).__name__, "input": list(input_shape),
            "layers": [r.to_json() for r in rows], "total_params": total,
            "trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "frozen_params": sum(p.numel() for p in params if not p.requires_grad),
            "unused_params": total - counted, "macs": sum(r.macs for r in rows),
            "receptive_field": _final_receptive_field(rows + ([trace.output] if trace.output else []))}


# ----------------------------------------------------------------------------- finding the model

# A summary runs one image through the model: 2**28 float32 values are 1 GiB already.
MAX_INPUT_VALUES = 2**28

def parse_input(text: str | None, default) -> tuple[int, int, int]:
    """'3x224x224' as given; '224' or '224x192' keep the model's own channel count."""
    if text is None:
        return tuple(default)
    try:
        numbers = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) == 2:
        numbers = [default[0], *numbers]
        LOGGER.info("--input %s read as height x width: %s, with the model's own %d channel(s).",
                    text, "x".join(map(str, numbers)), default[0])
    if len(numbers) != 3 or min(numbers) < 1:
        raise UserError(f"--input must be CxHxW with positive whole numbers (like 3x224x224), got '{text}'.")
    if numbers[0] * numbers[1] * numbers[2] > MAX_INPUT_VALUES:
        raise UserError(f"--input {text} is {numbers[0] * numbers[1] * numbers[2]:,} values per "
                        f"image, more than the {MAX_INPUT_VALUES:,} a summary traces; give a "
                        "smaller size (the arithmetic is the same: see `cnnlab conv-shape`).")
    return tuple(numbers)


def _import_attribute(spec: str):
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise UserError(f"'{spec}' must name a module and what in it builds the model, like "
                        "mynet:MyNet (mynet.py in this folder).")
    if os.getcwd() not in sys.path:
        # the `cnnlab` script's sys.path starts at its own folder; a user's mynet.py sits here
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module '{module_name}' for {spec} ({_first_line(exc)}).") from None
    except Exception as exc:  # the user's module itself fails: its first line says why
        raise UserError(f"module '{module_name}' failed while importing: "
                        f"{type(exc).__name__}: {_first_line(exc)}.") from None
    for part in path.split("."):
        if not hasattr(obj, part):
            raise UserError(f"module '{module_name}' has no attribute '{path}'.")
        obj = getattr(obj, part)
    return obj


# torchvision's segmentation and detection factories default to a pretrained backbone
NO_WEIGHTS = {"weights": None, "weights_backbone": None, "pretrained": False, "pretrained_backbone": False}


def _no_download(factory) -> dict:
    """Ask explicitly for no pretrained weights wherever the factory has a parameter for it:
    a summary needs shapes, not trained values, and must work offline."""
    try:
        names = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in NO_WEIGHTS.items() if name in names}


def load_model(spec: str, channels: int | None = None) -> tuple[nn.Module, tuple[int, int, int]]:
    """A registered model name, or `module:attribute` naming an nn.Module, a class or a factory
    called with no arguments except weights=None (and the like) so nothing is downloaded."""
    if ":" not in spec:
        from ..models import create_model, model_info
        info = model_info(spec)
        return create_model(spec, in_channels=channels), info.input_size
    obj = _import_attribute(spec)
    if not isinstance(obj, nn.Module):
        if not callable(obj):
            raise UserError(f"{spec} is neither an nn.Module nor something that builds one.")
        try:
            obj = obj(**_no_download(obj))
        except Exception as exc:  # the user's own constructor: its message is the explanation
            raise UserError(f"could not build {spec} without arguments: {_first_line(exc)}.") from None
    if not isinstance(obj, nn.Module):
        raise UserError(f"{spec} built a {type(obj).__name__}, not an nn.Module.")
    return obj, DEFAULT_INPUT


def summary(model: str, input: str | None = None) -> dict:
    """`cnnlab summary MODEL [--input CxHxW]`."""
    channels = parse_input(input, (1, 1, 1))[0] if input and input.count("x") == 2 else None
    module, default = load_model(model, channels)
    return summarize(module, parse_input(input, default), model)


# ----------------------------------------------------------------------------- text

def _pair_text(values) -> str:
    if values is None:
        return "-"
    return f"{values[0]:g}" if values[0] == values[1] else f"{values[0]:g}x{values[1]:g}"


def _row_cells(row: dict) -> list[str]:
    spatial = row["output_shape"] is not None and len(row["output_shape"]) == 3
    unknown = "?" if spatial and row["receptive_field"] is None else "-"
    params = f"{row['params']:,}" + (" (frozen)" if row["frozen_params"] and not row["trainable_params"] else "")
    return [row["name"] + (" (shared)" if row["shared"] else ""), row["type"],
            "x".join(map(str, row["output_shape"] or [])) or "-", params, f"{row['macs']:,}",
            *(_pair_text(row[k]) if row[k] is not None else unknown for k in ("receptive_field", "jump", "start"))]


def format_summary(result: dict) -> str:
    """A table like torchinfo's, plus the receptive-field columns the lectures talk about."""
    header = ["layer", "type", "output", "params", "MACs", "RF", "jump", "start"]
    table = [header] + [_row_cells(r) for r in result["layers"]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in table]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(0, f"{result['model']} on a {'x'.join(map(str, result['input']))} input")
    rf = result["receptive_field"]
    lines += [f"total parameters {result['total_params']:,} (trainable {result['trainable_params']:,}, "
              f"frozen {result['frozen_params']:,})",
              f"multiply-adds    {result['macs']:,}",
              f"receptive field  {rf if rf is not None else 'unknown'} (last feature map larger than 1x1)"]
    if result["unused_params"]:
        lines.append(f"{result['unused_params']:,} parameters belong to modules this forward pass never called")
    return "\n".join(lines)
