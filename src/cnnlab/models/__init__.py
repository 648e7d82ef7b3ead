"""The model zoo. Importing a family's module registers its builders."""
from . import (alexnet, cifar2, cifar_fast, cifar_resnet, dcgan, deeplab, detection,  # noqa: F401
               efficientnet, embedding, fcn, googlenet, lecture, lenet, lraspp, resnet,
               superres, unet, vgg, zfnet)
from . import video  # noqa: F401  (--task video)
from . import captioning  # noqa: F401  (--task caption)
from . import dense  # noqa: F401  (linear, mlp: the one-weight-per-pixel baselines)
from .registry import (ModelInfo, create_model, list_models, model_info, parameter_count,
                       plan_input, register_model)

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "parameter_count",
           "plan_input", "register_model"]
