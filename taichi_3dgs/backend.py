"""One place that initialises Taichi for the whole package.

Taichi may be initialised only once per process in practice (a second `ti.init` discards every
compiled kernel and field), so every entry point calls `init_taichi()`, which is a no-op after the
first call.

Architectures: "cpu" and "cuda" (torch tensors on the same device as the kernels), and "vulkan"
(any Vulkan device, including Mesa's CPU driver lavapipe; tensors stay on the torch CPU device and
Taichi copies them to and from the device around each kernel). Vulkan is slower than either for
training; the tests use it on lavapipe to run the GPU blending layout (block shared memory and
barriers) on machines without a GPU.
"""
from __future__ import annotations

import os

import taichi as ti
import torch

ARCH_ENV_VAR = "TAICHI_3DGS_ARCH"
_ARCHS = {"cpu": ti.cpu, "cuda": ti.cuda, "vulkan": ti.vulkan}
# Architectures whose kernels run in blocks of threads with shared memory (ti.simt.block).
GPU_ARCHS = ("cuda", "vulkan")
_initialised_arch: str | None = None


def _requested_arch(arch: str | None) -> str:
    name = arch or os.environ.get(ARCH_ENV_VAR) or ("cuda" if torch.cuda.is_available() else "cpu")
    name = name.lower()
    if name not in _ARCHS:
        source = "argument `arch`" if arch else f"environment variable {ARCH_ENV_VAR}"
        raise ValueError(f"{source} is {name!r}; expected one of {sorted(_ARCHS)}")
    return name


def init_taichi(arch: str | None = None) -> str:
    """Initialise Taichi once and return the architecture in use ("cpu", "cuda" or "vulkan").

    Args:
        arch: "cpu", "cuda" or "vulkan". When None, the environment variable TAICHI_3DGS_ARCH decides,
            and when that is unset: "cuda" if torch sees a GPU, else "cpu".

    Returns:
        The name of the architecture Taichi runs on.

    Raises:
        ValueError: `arch` (or the environment variable) names an unknown architecture.
        RuntimeError: Taichi was already initialised by this function for another
            architecture, or "cuda"/"vulkan" was requested and Taichi could not start on it
            (Taichi itself would fall back to the CPU silently).
    """
    global _initialised_arch
    name = _requested_arch(arch)
    if _initialised_arch is not None:
        if arch is not None and name != _initialised_arch:
            raise RuntimeError(
                f"Taichi is already initialised on {_initialised_arch!r}; cannot switch to {name!r} "
                "in the same process"
            )
        return _initialised_arch
    ti.init(arch=_ARCHS[name], default_fp=ti.f32, default_ip=ti.i32, log_level=ti.WARN)
    if ti.lang.impl.current_cfg().arch != _ARCHS[name]:
        raise RuntimeError(f"Taichi could not start on {name} (falling back is not allowed when asked)")
    _initialised_arch = name
    return name


def torch_device() -> torch.device:
    """The torch device whose tensors the Taichi kernels read and write (after `init_taichi`)."""
    return torch.device("cuda" if init_taichi() == "cuda" else "cpu")
