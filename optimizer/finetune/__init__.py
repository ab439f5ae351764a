"""Fine-tuned candidates: a LoRA of an embedded model trained on CPU and served by the ``local`` provider as
``local/<base>+ft-<key>`` (``pip install -e '.[finetune]'``: torch, transformers, peft, gguf).

Importing this package is light; torch loads when a LoRA is trained.
"""

from promptopt.finetune._lora import (
    GGUF_NAMES,
    Adapter,
    LoraParams,
    TrainingExample,
    adapter_key,
    data_hash,
    train_lora,
    write_gguf_lora,
)

__all__ = [
    "GGUF_NAMES",
    "Adapter",
    "LoraParams",
    "TrainingExample",
    "adapter_key",
    "data_hash",
    "train_lora",
    "write_gguf_lora",
]
