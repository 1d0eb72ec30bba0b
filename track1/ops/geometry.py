"""Conv geometry along one spatial axis: output size and the kernel taps that meet real input."""
from __future__ import annotations


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Outputs of a conv along an axis of ``size`` inputs."""
    return (size + 2 * padding - kernel) // stride + 1


def valid_taps(size: int, kernel: int, stride: int, padding: int) -> int:
    """Sum over the outputs along one axis of the kernel taps that meet real input."""
    return sum(sum(0 <= o * stride - padding + k < size for k in range(kernel))
               for o in range(out_size(size, kernel, stride, padding)))
