"""torch.optim without importing torch's compiler, for runs that compile nothing.

torch's optimisers mark their methods "not to be traced by the compiler" with
torch._disable_dynamo, which imports torch._dynamo (and torch.distributed.fsdp with it) the
first time each marked function is called, and Optimizer.step's wrapper imports it on every
call: 1.4-1.6 s of CPU at the first step (torch 2.14, 2-core CPU), more than a run of an
epoch on the digits trains. Outside compilation both only call the function they mark (the
step with gradients off), which is what `eager(optimizer)` makes them do directly:

- each marked function's own cache of its unmarked version (`fn.__dynamo_disable`, filled by
  the marker at its first call) is filled in advance with the function itself;
- the instance's `step` calls the optimiser's update under torch.no_grad(), as the wrapper
  does, with the step hooks registered on it (none in cnnlab) called as before.

The numbers computed are the same (tests/test_startup.py trains both ways). Where torch's
internals differ from these (another torch version), nothing is changed and the compiler is
imported as before. With --compile the optimiser is left alone: torch._dynamo is loaded anyway.
"""
from __future__ import annotations

import inspect
import sys
import types
from itertools import chain

import torch
from torch.optim import optimizer as hooks  # the global step hooks

_MARKED = torch._disable_dynamo(lambda: None).__code__  # the marker's wrapper, to recognise it


def _fill(function) -> bool:
    """Fill a marked function's cache with the unmarked function; False if not one."""
    if getattr(function, "__code__", None) is not _MARKED or "fn" not in _MARKED.co_freevars:
        return False
    original = function.__closure__[_MARKED.co_freevars.index("fn")].cell_contents
    setattr(original, "__dynamo_disable", original)  # what the marker would cache: itself
    return True


def _fill_in(function) -> None:
    """`function` itself, or a marked function it closes over (the functional update
    `adam` wraps one)."""
    if not _fill(function):
        for cell in getattr(function, "__closure__", None) or ():
            try:
                _fill(cell.cell_contents)
            except ValueError:  # an empty cell
                pass


def _update(optimizer) -> types.FunctionType | None:
    """The optimiser's own step function, under its profiling and gradient-mode wrappers."""
    step = inspect.unwrap(type(optimizer).step)
    return step if isinstance(step, types.FunctionType) else None


def fill_markers(cls: type) -> None:
    """Fill the caches of the marked methods of `cls` and its bases, and of the functions of
    their modules (the functional updates): before the optimiser is made, whose constructor
    calls one (add_param_group)."""
    for base in cls.__mro__:
        for value in vars(base).values():
            _fill_in(value)
        module = sys.modules.get(base.__module__)
        for value in vars(module).values() if module is not None else ():
            if isinstance(value, types.FunctionType):
                _fill_in(value)


def eager(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """`optimizer`, made never to import torch._dynamo (see the module's docstring)."""
    update = _update(optimizer)
    if update is None or "torch._dynamo" in sys.modules:
        return optimizer
    fill_markers(type(optimizer))

    def step(self, closure=None):
        for hook in chain(hooks._global_optimizer_pre_hooks.values(),
                          self._optimizer_step_pre_hooks.values()):
            hook(self, (closure,), {})
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            out = update(self, closure)
        for hook in chain(self._optimizer_step_post_hooks.values(),
                          hooks._global_optimizer_post_hooks.values()):
            hook(self, (closure,), {})
        return out

    optimizer.step = types.MethodType(step, optimizer)
    return optimizer
