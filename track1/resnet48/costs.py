"""Analytic FLOPs and params of Track 1 archs, vectorised over many codes.

FLOPs follow the convention of ``paddle.flops`` that the competition used (docs/REFERENCE.md
§2): multiply-adds of every conv and of the fc (bias-free), plus 2 per BN
output element, plus (kernel area + 1) per output element of the adaptive average
pool; ReLU, max pool and the residual add count 0. Params are PyTorch's (weights and
biases; BN running statistics excluded).

``macs_unpadded`` also counts conv MACs but leaves out the taps that fall on zero
padding: the arithmetic a kernel that skips padding must do at least. It equals
``macs`` minus the border taps and matters at low resolution (on a 1x1 map a 3x3 conv
has one real tap of nine); it is what the CPU ceiling in ``tools/bench_cpu_forward.py``
divides by.

One pass of numpy arithmetic over an (N, 52) digit matrix counts the whole official
list in milliseconds; ``count_costs`` is the same code on one arch.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from track1.ops.geometry import out_size, valid_taps
from track1.resnet48.arch import (BASE_WIDTHS, CODE_LENGTH, IMAGE_SIZE_CODES, MAX_DEPTHS,
                                  SLOT_OFFSET, STEM_BASE_WIDTH, STRIDES, WIDTH_CODES, ResNetArch,
                                  channels, decode, encode)

# _CHANNELS[s][code] = channels of a stage-s conv with that width code; code 0 -> 0.
_CHANNELS = [np.array([0] + [channels(base, c) for c in WIDTH_CODES], dtype=np.int64)
             for base in BASE_WIDTHS]
_STEM_CHANNELS = np.array([0] + [channels(STEM_BASE_WIDTH, c) for c in WIDTH_CODES],
                          dtype=np.int64)


def block_conv_macs(cin, mid, out, stride: int, size: int, unpadded: bool = False):
    """MACs of a BasicBlock's two 3x3 convs (conv1 at ``stride`` on a ``size`` map, conv2
    at stride 1), without the 1x1 projection; ``unpadded`` leaves out the padding taps.
    Channel counts may be ints or numpy arrays (one entry per arch)."""
    so = out_size(size, 3, stride, 1)
    if unpadded:
        return (mid * cin * valid_taps(size, 3, stride, 1) ** 2
                + out * mid * valid_taps(so, 3, 1, 1) ** 2)
    return (mid * cin + out * mid) * 9 * so * so


def block_macs(cin: int, mid: int, out: int, stride: int, hw: int, unpadded: bool = False) -> int:
    """Conv MACs of one block on an ``hw`` x ``hw`` input, its 1x1 projection included
    (``unpadded``: padding taps left out)."""
    macs = block_conv_macs(cin, mid, out, stride, hw, unpadded)
    if stride != 1 or cin != out:
        ho = out_size(hw, 3, stride, 1)
        macs += cin * out * ho * ho
    return macs


def block_geometry(code: str, image_size: int = 224):
    """The blocks of arch ``code`` at ``image_size`` px, in forward order:
    ``(stage, index, c_in, mid, out, stride, input size)``."""
    arch = decode(code)
    cin, hw = arch.stem_channels, out_size(out_size(image_size, 7, 2, 3), 3, 2, 1)
    for s, widths in enumerate(arch.block_channels()):
        for j, (mid, out) in enumerate(widths):
            stride = STRIDES[s] if j == 0 else 1
            yield s, j, cin, mid, out, stride, hw
            cin, hw = out, out_size(hw, 3, stride, 1)


def digit_matrix(codes: Sequence[str]) -> np.ndarray:
    """(N, 52) int64 matrix of the digits of ``codes`` (which must be well-formed)."""
    blob = "".join(codes).encode("ascii")
    if len(blob) != CODE_LENGTH * len(codes):
        raise ValueError(f"every code must have {CODE_LENGTH} characters")
    return (np.frombuffer(blob, dtype=np.uint8).reshape(len(codes), CODE_LENGTH)
            - ord("0")).astype(np.int64)


def count_costs_many(codes: Union[Sequence[str], np.ndarray], image_size: int | None = None,
                     num_classes: int = 1000) -> dict[str, np.ndarray]:
    """FLOPs (Paddle convention), conv+fc MACs (also without padding taps: ``macs_unpadded``)
    and params for many archs at once.

    ``codes`` are arch codes (assumed valid: decode them first when unsure) or a digit
    matrix from ``digit_matrix``. ``image_size`` defaults to the size the image-size
    code names (224). Untied archs are counted too: a block gets a 1x1 projection on
    its shortcut where its stride is not 1 or its input width differs from its output.
    """
    d = codes if isinstance(codes, np.ndarray) else digit_matrix(list(codes))
    if image_size is None:
        image_size = IMAGE_SIZE_CODES[1]
    depths = d[:, 1:5]
    cin = _STEM_CHANNELS[d[:, 5]]
    h = out_size(image_size, 7, 2, 3)
    macs = cin * 3 * 49 * h * h
    unpadded = cin * 3 * valid_taps(image_size, 7, 2, 3) ** 2
    bn_elems = cin * h * h
    params = cin * 3 * 49 + 2 * cin
    h = out_size(h, 3, 2, 1)  # max pool
    for s, max_depth in enumerate(MAX_DEPTHS):
        table = _CHANNELS[s]
        stage_h = h
        for j in range(max_depth):
            stride = STRIDES[s] if j == 0 else 1
            ho = out_size(h, 3, stride, 1)
            if j == 0:
                stage_h = ho
            i = SLOT_OFFSET + 2 * (sum(MAX_DEPTHS[:s]) + j)
            c1, c2 = table[d[:, i]], table[d[:, i + 1]]  # 0 in padded slots
            active = j < depths[:, s]
            area = ho * ho
            macs = macs + block_conv_macs(cin, c1, c2, stride, h)
            unpadded = unpadded + block_conv_macs(cin, c1, c2, stride, h, unpadded=True)
            bn_elems = bn_elems + (c1 + c2) * area
            params = params + (c1 * cin + c2 * c1) * 9 + 2 * (c1 + c2)
            proj = active & ((stride != 1) | (cin != c2))
            macs = macs + np.where(proj, c2 * cin * area, 0)
            unpadded = unpadded + np.where(proj, c2 * cin * area, 0)
            bn_elems = bn_elems + np.where(proj, c2 * area, 0)
            params = params + np.where(proj, c2 * cin + 2 * c2, 0)
            cin = np.where(active, c2, cin)
            h = ho if j == 0 else h
        h = stage_h
    macs = macs + cin * num_classes
    unpadded = unpadded + cin * num_classes
    params = params + cin * num_classes + num_classes
    pool = (h * h + 1) * cin
    flops = macs + 2 * bn_elems + pool
    return {"flops": flops, "macs": macs, "params": params, "macs_unpadded": unpadded}


def count_costs(arch: Union[ResNetArch, str], image_size: int | None = None,
                num_classes: int = 1000) -> dict[str, int]:
    """FLOPs (Paddle convention), conv+fc MACs and params of one arch (or code)."""
    code = arch if isinstance(arch, str) else encode(arch)
    out = count_costs_many([code], image_size=image_size, num_classes=num_classes)
    return {k: int(v[0]) for k, v in out.items()}
