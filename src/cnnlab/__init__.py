"""cnnlab: convolutional neural networks on images, as the lectures teach them."""
__version__ = "0.1.0"

from .config import TrainConfig  # noqa: E402
from .engine import evaluate, fit, train_one_epoch  # noqa: E402
from .errors import UserError  # noqa: E402
from .models import create_model, list_models, model_info  # noqa: E402
from .training import train  # noqa: E402

__all__ = ["TrainConfig", "UserError", "create_model", "evaluate", "fit", "list_models",
           "model_info", "train", "train_one_epoch", "__version__"]
