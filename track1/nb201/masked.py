"""The static-graph forward of the NB201 supernet: every candidate op of every edge runs
and is scaled by each path's 0/1 weight, several paths in one forward (activations
``[B, A*C, H, W]``: path ``a`` owns channels ``a*C .. a*C+C-1``; convolutions grouped with
the shared weight repeated per path; every BatchNorm normalises each path's channels with
that path's own batch statistics, exactly as separate forwards would)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from track1.nb201.network import EDGES, NONE, POOL, SKIP


def _rep(t: torch.Tensor | None, a: int) -> torch.Tensor | None:
    if t is None or a == 1:
        return t
    return t.repeat(a, *([1] * (t.dim() - 1)))


def _conv(x: torch.Tensor, conv: nn.Conv2d, a: int) -> torch.Tensor:
    return F.conv2d(x, _rep(conv.weight, a), None, conv.stride, conv.padding, 1, a)


def _bn_train(x: torch.Tensor, bn: nn.BatchNorm2d, a: int, on: torch.Tensor | None) -> torch.Tensor:
    """Train-mode BN with each path's own batch statistics. Running statistics move once
    per path, in path order, where ``on[path]`` is 1 (``None``: every path)."""
    y = F.batch_norm(x, None, None, _rep(bn.weight, a), _rep(bn.bias, a), True, 0.0, bn.eps)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
            var, mean = torch.var_mean(xs, dim=(0, 2, 3), unbiased=True)
            m = bn.momentum
            rm, rv = bn.running_mean, bn.running_var
            c = rm.numel()
            for p in range(a):
                new_m = mean[p * c:(p + 1) * c] * m + rm * (1 - m)
                new_v = var[p * c:(p + 1) * c] * m + rv * (1 - m)
                if on is None:
                    rm.copy_(new_m)
                    rv.copy_(new_v)
                    bn.num_batches_tracked.add_(1)
                else:
                    rm.copy_(torch.where(on[p] > 0, new_m, rm))
                    rv.copy_(torch.where(on[p] > 0, new_v, rv))
                    bn.num_batches_tracked.add_(on[p].to(bn.num_batches_tracked.dtype))
    return y


def _relu_conv_bn(x: torch.Tensor, block: nn.Module, a: int, on: torch.Tensor | None) -> torch.Tensor:
    _, conv, bn = block.op
    return _bn_train(_conv(F.relu(x), conv, a), bn, a, on)


def masked_forward(supernet: nn.Module, images: torch.Tensor, weights: torch.Tensor,
                   ops: Sequence[int]) -> torch.Tensor:
    """Train-mode logits ``[A, B, classes]`` of the ``A`` paths whose 0/1 op weights are
    ``weights`` ``[A, 6, 5]`` (a device tensor), all on the same ``images``. ``ops`` are
    the op indices that can be on a path (the space's), so no other op is computed."""
    a = weights.shape[0]
    stem_conv, stem_bn = supernet.stem
    stem = F.conv2d(images, stem_conv.weight, None, stem_conv.stride, stem_conv.padding)
    # the paths share the stem's input, so its batch statistics are the same for each
    x = _bn_train(stem, stem_bn, 1, None)
    for _ in range(a - 1):  # ... but each path's forward moves the running stats once
        _bn_train(stem.detach(), stem_bn, 1, None)
    x = _rep_channels(x, a)
    scales: dict[int, torch.Tensor] = {}
    for block in supernet.cells:
        if hasattr(block, "conv_a"):           # reduction ResBlock
            pool, down = block.downsample
            x = F.conv2d(pool(x), _rep(down.weight, a), None, 1, 0, 1, a) + \
                _relu_conv_bn(_relu_conv_bn(x, block.conv_a, a, None), block.conv_b, a, None)
            continue
        c = x.shape[1] // a
        if c not in scales:  # [6, 5, 1, A*C, 1, 1]: each op's 0/1 weight per channel, in
            # the activations' dtype (bf16 under autocast: no promotion of a node to fp32)
            scales[c] = weights.permute(1, 2, 0).repeat_interleave(c, dim=2)[
                ..., None, :, None, None].to(x.dtype)
        x = _masked_cell(block, x, weights, scales[c], ops, a)
    lastact_bn, _ = supernet.lastact
    x = F.relu(_bn_train(x, lastact_bn, a, None))
    x = torch.flatten(supernet.pool(x), 1)            # [B, A * 4C]
    if supernet.dropout_p:  # the same distribution as per-path dropout (not the same draws)
        x = F.dropout(x, supernet.dropout_p, supernet.training)
    b = x.shape[0]
    logits = supernet.classifier(x.view(b, a, -1))    # [B, A, classes]
    return logits.transpose(0, 1)


def _rep_channels(x: torch.Tensor, a: int) -> torch.Tensor:
    return x if a == 1 else x.repeat(1, a, 1, 1)


def _masked_cell(cell: nn.Module, x: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor,
                 ops: Sequence[int], a: int) -> torch.Tensor:
    nodes = [x]
    for to in range(1, 4):
        total = None
        for e, (dst, src) in enumerate(EDGES):
            if dst != to:
                continue
            inp = nodes[src]
            for o in ops:
                if o == NONE:
                    continue
                if o == SKIP:
                    y = inp
                elif o == POOL:
                    y = F.avg_pool2d(inp, 3, 1, 1, count_include_pad=False)
                else:
                    y = _relu_conv_bn(inp, cell.edges[e][o], a, weights[:, e, o])
                y = y * scale[e, o]
                total = y if total is None else total + y
        nodes.append(total if total is not None else torch.zeros_like(x))
    return nodes[3]


# ------------------------------------------------------------------------ the step
