"""Convolutions on tiny feature maps, computed as one dense matrix product.

At low input resolution (the 32-px demo set, NAS-Bench-201-sized images) ResNet-48's
last stages see 2x2 and 1x1 maps. A 3x3 convolution with padding 1 there touches
mostly zero padding: on a 1x1 map only the centre tap meets real input, on a 2x2 map
each output sees 4 of its 9 taps. The CPU convolution kernels handle such maps poorly
(measured on CPU-2, batch 1,024: a 512-channel 3x3 conv on a 1x1 map runs 1.3x (fp32)
to 1.9x (bf16) slower than the same work as one matrix product, the matrix gathered
anew each call; see ``tools/bench_cpu_forward.py``).

The lowering: for fixed spatial sizes a convolution is a linear map from the
``H*W*C_in`` input values to the ``Ho*Wo*C_out`` outputs. Its matrix is gathered from
the kernel (tap ``(kh, kw)`` links input position ``(i, j)`` to output ``(o, p)`` when
``i = o*stride - pad + kh``; pairs with no tap get zero), and the convolution becomes
one ``F.linear``. It is used only where the dense matrix has no more multiply-adds than
the convolution's taps (``H*W <= k*k / 2``: 1x1 and 2x2 maps under a 3x3 kernel), so it
never does more arithmetic. The result equals ``F.conv2d`` up to float summation order
and is differentiable (the gather has a gradient), so training uses it too.

Without autograd (scoring), ``DenseMatrixCache`` keeps each module's last matrix, cast
to the autocast dtype, for as long as the weight, its active slice and the map size
stay the same: a subnet's calibration chunks and evaluation batches then gather it once.
"""
from __future__ import annotations

import functools
import weakref

import torch
import torch.nn.functional as F

from track1.ops.geometry import out_size


def use_dense_form(h: int, w: int, kernel: int, groups: int = 1, dilation: int = 1) -> bool:
    """Whether a ``kernel`` x ``kernel`` conv on an ``h`` x ``w`` map is cheaper as one
    dense matrix product (never for 1x1 kernels, which already are one)."""
    return groups == 1 and dilation == 1 and kernel > 1 and 2 * h * w <= kernel * kernel


@functools.lru_cache(maxsize=256)
def _tap_index(h: int, w: int, kernel: int, stride: int, padding: int,
               device: torch.device) -> tuple[torch.Tensor, int, int]:
    """Flat index into the zero-padded ``(k+1) x (k+1)`` kernel for every
    (output row, output col, input row, input col); ``(k, k)`` is the zero tap."""
    def taps(size: int) -> list[list[int]]:
        return [[i - o * stride + padding if 0 <= i - o * stride + padding < kernel else kernel
                 for i in range(size)] for o in range(out_size(size, kernel, stride, padding))]
    # cached across calls, so never an inference tensor: autograd may save it later
    with torch.inference_mode(False):
        th, tw = torch.tensor(taps(h)), torch.tensor(taps(w))  # [Ho, H], [Wo, W]
        index = th[:, None, :, None] * (kernel + 1) + tw[None, :, None, :]  # [Ho, Wo, H, W]
        return index.reshape(-1).to(device), len(th), len(tw)


def dense_conv_matrix(weight: torch.Tensor, h: int, w: int, stride: int, padding: int
                      ) -> tuple[torch.Tensor, int, int]:
    """The ``[Ho*Wo*C_out, H*W*C_in]`` matrix (position-major, channel-minor on both
    sides) of a conv with ``weight`` on an ``h`` x ``w`` map, and ``(Ho, Wo)``."""
    c_out, c_in, k, _ = weight.shape
    index, ho, wo = _tap_index(h, w, k, stride, padding, weight.device)
    padded = F.pad(weight, (0, 1, 0, 1)).flatten(2)  # [C_out, C_in, (k+1)^2], last tap zero
    gathered = padded[:, :, index].view(c_out, c_in, ho, wo, h, w)
    return gathered.permute(2, 3, 0, 4, 5, 1).reshape(ho * wo * c_out, h * w * c_in), ho, wo


class DenseMatrixCache:
    """One module's last dense matrix, reused while nothing it was built from changed.

    It is tied to the weight tensor itself (a weak reference, so a replaced parameter
    never matches) and keyed on its storage, version counter (bumped by every in-place
    write: an optimizer step, ``load_state_dict``, a restore), shape and strides (the
    active slice), the map size, stride, padding and dtype. Only used without autograd,
    so a cached matrix never carries a graph.
    """

    def __init__(self) -> None:
        self._owner: weakref.ref | None = None
        self._key: tuple | None = None
        self._value: tuple[torch.Tensor, int, int] | None = None

    def matrix(self, weight: torch.Tensor, h: int, w: int, stride: int, padding: int,
               dtype: torch.dtype) -> tuple[torch.Tensor, int, int]:
        owner = weight if weight._base is None else weight._base  # the parameter of a slice
        key = (weight.data_ptr(), weight._version, tuple(weight.shape), weight.stride(),
               weight.device, h, w, stride, padding, dtype)
        if self._owner is None or self._owner() is not owner or key != self._key:
            self.clear()  # free the old matrix before building the new one
            matrix, ho, wo = dense_conv_matrix(weight.to(dtype), h, w, stride, padding)
            self._owner, self._key, self._value = weakref.ref(owner), key, (matrix, ho, wo)
        return self._value

    def clear(self) -> None:
        self._owner = self._key = self._value = None

    # transient: a pickled or deep-copied module starts with an empty cache (a weak
    # reference cannot be pickled, and a copy's weight is another tensor anyway)
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.clear()


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype ``F.linear`` will run in: the autocast dtype when autocast is on."""
    device = weight.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


def conv2d_dense(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                 cache: DenseMatrixCache | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride, padding)`` as one matrix product (for maps
    where ``use_dense_form`` holds). The output keeps the input's memory format.
    ``cache`` is consulted only while autograd is off."""
    n, _, h, w = x.shape
    if cache is not None and not torch.is_grad_enabled():
        matrix, ho, wo = cache.matrix(weight, h, w, stride, padding, _compute_dtype(weight))
    else:
        matrix, ho, wo = dense_conv_matrix(weight, h, w, stride, padding)
    y = F.linear(x.permute(0, 2, 3, 1).reshape(n, -1), matrix)  # [N, Ho*Wo*C_out]
    y = y.view(n, ho, wo, -1).permute(0, 3, 1, 2)  # channels_last strides
    return y if x.is_contiguous(memory_format=torch.channels_last) else y.contiguous()
