"""cnnlab: convolutional neural networks on images, as the lectures teach them.

The public names load on first use (PEP 562), so `cnnlab --help` and small commands do
not pay for importing the whole training and data stack.
"""
import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "TrainConfig": "config.train_config", "UserError": "errors", "train": "training.run",
    "evaluate": "engine.loop", "fit": "engine.loop", "train_one_epoch": "engine.loop",
    "create_model": "models", "list_models": "models", "model_info": "models",
    "Classify": "tasks.classify",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
