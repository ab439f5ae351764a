"""Fine-tuned candidates: a LoRA of an embedded model trained on CPU and served by the ``local`` provider as
``local/<base>+ft-<key>`` (``pip install -e '.[finetune]'``: torch, transformers, peft, gguf), or a provider
fine-tune trained through an OpenAI-compatible fine-tuning API (:func:`train_provider`) and called as
``openai/ft:...``.

Importing this package is light; torch loads when a LoRA is trained, litellm when a provider is called.
"""

from promptopt.finetune._lora import (
    GGUF_NAMES,
    Adapter,
    LoraParams,
    LoraTrainer,
    TrainingExample,
    adapter_key,
    data_hash,
    train_in_thread,
    train_lora,
    write_gguf_lora,
)
from promptopt.finetune._provider import (
    Polling,
    ProviderFineTune,
    ProviderParams,
    provider_key,
    train_provider,
    training_file,
    training_tokens,
)

__all__ = [
    "GGUF_NAMES",
    "Adapter",
    "LoraParams",
    "LoraTrainer",
    "Polling",
    "ProviderFineTune",
    "ProviderParams",
    "TrainingExample",
    "adapter_key",
    "data_hash",
    "provider_key",
    "train_in_thread",
    "train_lora",
    "train_provider",
    "training_file",
    "training_tokens",
    "write_gguf_lora",
]
