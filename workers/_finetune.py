"""LoRA training as a Ray task: a run on Ray trains its fine-tunes on a worker, not in the driver.

The task trains (or finds again) the adapter where the worker's adapters folder is (the driver's folder on its
own node, see :func:`~promptopt.workers._cluster.ensure_ray`) and returns the file's bytes with its record, so
a driver on another machine than the worker still ends up holding the same file under the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

import ray  # noqa: TID251 (workers/ is the Ray adapter)

from promptopt.finetune import Adapter, LoraParams, LoraTrainer, TrainingExample
from promptopt.models import adapter_file, write_adapter
from promptopt.workers._cluster import ensure_ray


def _train(base_model: str, examples: list[dict[str, Any]], params: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The task's body, on a worker: the adapter's record and file."""
    from promptopt.finetune import train_lora

    rows = [TrainingExample.model_validate(e) for e in examples]
    adapter = train_lora(base_model, rows, LoraParams.model_validate(params))
    return adapter.model_dump(mode="json"), adapter.path.read_bytes()


def ray_lora_trainer(address: str | None = None) -> LoraTrainer:
    """A :data:`~promptopt.finetune.LoraTrainer` that runs each training as a Ray task (joining the cluster at
    ``address``, or a local one it starts for the training and shuts down after it)."""

    async def train(base_model: str, examples: Sequence[TrainingExample], params: LoraParams) -> Adapter:
        owns = ensure_ray(address)
        try:
            task = cast(Any, ray.remote(num_cpus=1)(_train))  # untyped in Ray's stubs
            rows = [e.model_dump(mode="json") for e in examples]
            record, content = await task.remote(base_model, rows, params.model_dump(mode="json"))
        finally:
            if owns:
                ray.shutdown()
        adapter = Adapter.model_validate(record)
        path = adapter_file(adapter.key)
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != adapter.file_sha256:
            write_adapter(adapter.key, content)  # the worker's folder was not this one (another node)
        return adapter.model_copy(update={"path": path})

    return train
