"""The model zoo. Importing a family's module registers its builders."""
from . import lecture, lenet  # noqa: F401  (registration side effect)
from .registry import ModelInfo, create_model, list_models, model_info, register_model

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]
