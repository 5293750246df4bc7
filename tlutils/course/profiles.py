"""Profiles: one switch that sizes every notebook for CI, a laptop or a GPU.

Explained in 00_start_here.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Profile:
    """Defaults the notebooks share; each notebook's parameters cell can override them."""

    name: str
    dataset: str  # a name in tlutils.course.assets.DATASETS
    backbone: str  # a name in tlutils.backbones.BACKBONES
    image_size: int
    batch_size: int
    description: str
    mixed_precision: bool = False  # float16/bfloat16 compute on a GPU (see configure())


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", "hymenoptera", "mobilenet_025", 224, 32,
                     "CI and quick checks: 2 CPU cores, offline from a pre-filled cache, "
                     "seconds to about two minutes a notebook"),
    "cpu": Profile("cpu", "hymenoptera", "mobilenet_v2", 160, 32,
                   "a laptop without GPU: 2 to 15 minutes a notebook, downloads allowed"),
    "gpu": Profile("gpu", "flower_photos", "efficientnet_b0", 224, 64,
                   "Colab or any GPU: the full flowers set and a stronger backbone",
                   mixed_precision=True),
}


def current(name: str | None = None) -> str:
    """The profile to use: `name`, else $TLU_PROFILE, else "gpu" with a GPU, else "cpu"."""
    name = name or os.environ.get("TLU_PROFILE") or ("gpu" if gpu_name() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: choose one of {', '.join(PROFILES)}.")
    return name


def get(name: str | None = None) -> Profile:
    """The Profile for `name` (see current())."""
    return PROFILES[current(name)]


def _first_gpu() -> tuple[str, tuple[int, int] | None] | None:
    """(name, CUDA compute capability) of the first GPU the Keras backend sees, or None."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        return details.get("device_name", gpus[0].name), details.get("compute_capability")
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        cc = getattr(gpus[0], "compute_capability", None)
        return gpus[0].device_kind, tuple(int(v) for v in cc.split(".")) if cc else None
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0))
    return None


def gpu_name() -> str | None:
    """The name of the first GPU the Keras backend sees, or None."""
    gpu = _first_gpu()
    return gpu[0] if gpu else None


def device() -> str:
    """What the computation runs on, in words: the GPU's name or the CPU core count."""
    return gpu_name() or f"CPU ({os.cpu_count()} cores)"


def gpu_compute_capability() -> tuple[int, int] | None:
    """(major, minor) CUDA compute capability of the first GPU, or None."""
    gpu = _first_gpu()
    return gpu[1] if gpu else None


def precision_policy(profile: Profile, capability: tuple[int, int] | None) -> str:
    """"mixed_bfloat16" on Ampere (8.0) and newer, "mixed_float16" on older GPUs such as
    Colab's T4, "float32" on a CPU or for profiles without mixed precision."""
    if not profile.mixed_precision or capability is None:
        return "float32"
    return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "mixed_float16"


def where_it_runs(name: str) -> str:
    """One line for a notebook's Setup: Keras, backend, device, profile and dtype policy
    (call configure() first); without a GPU, what that means and how to get one on Colab.
    Explained in 00_start_here."""
    import keras

    line = (f"Keras {keras.__version__}, backend {keras.backend.backend()}, on {device()}; "
            f"profile {name}, dtype policy {keras.config.dtype_policy().name}")
    if gpu_name() is None:
        line += ("\nNo GPU here: the smoke and cpu profiles are sized for that. For the gpu "
                 "profile on Colab, choose Runtime > Change runtime type > GPU, then run again.")
    return line


def configure(name: str) -> str:
    """Apply a profile's global Keras settings (the dtype policy); return the policy name.

    Explained in 00_start_here. Models built afterwards compute in that precision; the
    classifier's softmax stays in float32 (see backbones.build_classifier).
    """
    import keras

    policy = precision_policy(PROFILES[name], gpu_compute_capability())
    keras.config.set_dtype_policy(policy)
    return policy
