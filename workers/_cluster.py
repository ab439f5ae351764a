"""Joining or starting the Ray cluster, and the facts about it the other modules need."""

from __future__ import annotations

import logging
import os

import ray  # noqa: TID251 (workers/ is the Ray adapter)

# Workers price calls from litellm's bundled cost map and never reach the Hugging Face hub.
WORKER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}


def ensure_ray(address: str | None) -> bool:
    """Connect this process to Ray; returns whether it started a local cluster (which it then owns).

    An already initialised Ray is used as is. ``address`` joins an existing cluster; ``None`` starts a local
    one sized to this machine, without the dashboard, with :data:`WORKER_ENV` set for every worker.
    """
    if ray.is_initialized():
        return False
    from promptopt.models import ADAPTERS_ENV, adapters_dir

    # Fine-tuned local models: workers read adapters from the driver's folder (an absolute path; a remote
    # node needs that folder shared, or the adapter copied, at the same path).
    runtime_env = {"env_vars": {**WORKER_ENV, ADAPTERS_ENV: str(adapters_dir().resolve())}}
    if address is not None:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING)
        return False
    # "local": a new instance even when another Ray runs on this machine (ray.init() would join that one).
    ray.init(
        address="local",
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=runtime_env,
        logging_level=logging.WARNING,
    )
    return True


def alive_node_ids() -> list[str]:
    """Ids of the cluster's live nodes, in Ray's order."""
    return list(alive_node_cpus())


def alive_node_cpus() -> dict[str, float]:
    """The cluster's live nodes (in Ray's order) and the CPUs each offers to Ray."""
    return {n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]}


def current_node_id() -> str:
    """Id of the node this code runs on (driver or worker)."""
    return str(ray.get_runtime_context().get_node_id())
