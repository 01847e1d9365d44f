"""Taichi ndarray argument types of the rasterizer kernels, the check of the torch tensors passed to them, and
the scatter of packed (visible-only) kernel outputs back to all rows."""
import taichi as ti
import torch

F32_1D = ti.types.ndarray(dtype=ti.f32, ndim=1)
F32_2D = ti.types.ndarray(dtype=ti.f32, ndim=2)
F32_3D = ti.types.ndarray(dtype=ti.f32, ndim=3)
I32_1D = ti.types.ndarray(dtype=ti.i32, ndim=1)
I32_2D = ti.types.ndarray(dtype=ti.i32, ndim=2)
I64_1D = ti.types.ndarray(dtype=ti.i64, ndim=1)


def check_tensor(name: str, tensor: torch.Tensor, shape: tuple, device: torch.device) -> None:
    """Raise ValueError unless `tensor` is float32 on `device` with `shape` (-1 = any size >= 0)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    ok_shape = tensor.dim() == len(shape) and all(s in (-1, t) for s, t in zip(shape, tensor.shape))
    if not ok_shape:
        expected = "[" + ", ".join("N" if s == -1 else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {expected}, got {list(tensor.shape)}")
    if tensor.dtype != torch.float32:
        raise ValueError(f"{name}: expected dtype float32, got {tensor.dtype}")
    if tensor.device != device:
        raise ValueError(f"{name}: expected device {device}, got {tensor.device}")


def scatter_rows(packed: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """[n, ...] zeros with row ids[r] = packed[r]: a packed kernel output ([V, ...], one row per
    visible Gaussian) put back in place. ids [V] int64 must be distinct (each row written once, so
    the result does not depend on the order of the writes: no atomics). Kernels write packed
    arrays whole: on Vulkan an array a kernel only writes is not copied to the device first, so
    rows it skipped would come back undefined."""
    full = packed.new_zeros((n, *packed.shape[1:]))
    full[ids] = packed
    return full
