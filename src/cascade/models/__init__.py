"""Models: the locally built tokenizer and tiny Qwen3 models, and loading any HF model.

Unlike the torch-free core (chat, config, data, verifiers, sandbox), this package may use
torch and transformers; its modules import them inside functions so that importing
``cascade.models`` (e.g. for ``SIZES``) stays cheap.
"""

from cascade.models.loading import install_chat_template, load_model_and_tokenizer
from cascade.models.tiny import (
    SIZES,
    TRAINING_TEMPLATE_FILE,
    InitResult,
    count_parameters,
    create_model,
    init_model,
    write_training_template,
)
from cascade.models.tokenizer_factory import build_tokenizer

__all__ = [
    "SIZES",
    "TRAINING_TEMPLATE_FILE",
    "InitResult",
    "build_tokenizer",
    "count_parameters",
    "create_model",
    "init_model",
    "install_chat_template",
    "load_model_and_tokenizer",
    "write_training_template",
]
