"""Score many NAS-Bench-201 archs in one forward: the bench's fast scorer.

The plain scorer (``track1.evaluate.SubnetScorer``) runs one arch at a time; on a GPU
each forward is a few hundred small kernels, so scoring is bound by launches. Here a
pass carries ``A`` archs at once: activations are ``[A*B, C, H, W]`` (arch-major), the
stem and reduction blocks run on the whole pass, and each edge's op runs only on the
archs that chose it (gathered, then added into the next node), so no FLOP is wasted and
the launch count of a pass is about that of one plain forward. Every BatchNorm keeps
statistics per arch.

BN modes as in the plain scorer: ``recalibrate`` (every BN's statistics those of the
whole calibration set, whatever the chunking, as ``track1.scoring.bn.recalibrate``
computes them, then eval-mode BN), ``batch`` (each evaluation chunk normalised by its own
statistics) and ``stored`` (the supernet's running statistics). The results equal the
plain scorer's up to float rounding (tested).
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from track1.data.decode import normalize
from track1.scoring.bn import CALIB_TOL, merge_moments, sweep_limit
from track1.scoring.engine import ScorerBase, SubnetScore, Tally
from track1.nb201.network import EDGES, NONE, OPS, POOL, SKIP


def split_archs(x: torch.Tensor, a: int) -> torch.Tensor:
    """``[a*B, C, H, W]`` channels-last -> its ``[a, B, H, W, C]`` view (no copy)."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).view(a, n // a, h, w, c)


def merge_archs(v: torch.Tensor) -> torch.Tensor:
    """``[a, B, H, W, C]`` (contiguous) -> ``[a*B, C, H, W]`` channels-last (no copy)."""
    a, b, h, w, c = v.shape
    return v.reshape(a * b, h, w, c).permute(0, 3, 1, 2)


class _PassBN:
    """Per-arch BatchNorm for one pass of ``A`` archs. Modes: ``calib`` (normalise by the
    chunk's statistics and pool them), ``refine`` (normalise by the previous sweep's
    whole-set statistics and pool again), ``batch`` (each chunk by its own statistics)
    and ``eval`` (the pooled statistics, or the supernet's stored ones)."""

    def __init__(self, a: int, mode: str, stored: bool) -> None:
        self.a, self.mode, self.stored = a, mode, stored
        self.pooled: dict[int, list[torch.Tensor]] = {}   # id(bn) -> [count, mean, m2]
        self.fixed: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # mean, biased var
        self.final: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # mean, unbiased var

    def __call__(self, x: torch.Tensor, bn: nn.BatchNorm2d, idx: torch.Tensor | None,
                 k: int) -> torch.Tensor:
        """Normalise ``x`` ``[k*B, C, H, W]`` (channels-last) belonging to archs ``idx``
        (None: all of the pass)."""
        v = split_archs(x, k)                     # [k, B, H, W, C], a view
        c = v.shape[-1]
        if self.mode == "eval":
            if self.stored:
                mean = bn.running_mean.expand(k, c)
                var = bn.running_var.expand(k, c)
            else:
                mean, var = self.final[id(bn)]
                if idx is not None:
                    mean, var = mean[idx], var[idx]
        else:
            vs = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
            var, mean = torch.var_mean(vs, dim=(1, 2, 3), unbiased=False)
            if self.mode in ("calib", "refine"):
                self._pool(bn, idx, mean, var, v.shape[1] * v.shape[2] * v.shape[3])
            if self.mode == "refine":
                mean, var = self.fixed[id(bn)]
                if idx is not None:
                    mean, var = mean[idx], var[idx]
        scale = torch.rsqrt(var + bn.eps)
        if bn.affine:
            scale = scale * bn.weight
        shift = -mean * scale
        if bn.affine:
            shift = shift + bn.bias
        y = (v * scale.to(x.dtype)[:, None, None, None, :]
             + shift.to(x.dtype)[:, None, None, None, :])
        return merge_archs(y)

    def _pool(self, bn: nn.BatchNorm2d, idx: torch.Tensor | None,
              mean: torch.Tensor, var_b: torch.Tensor, n: int) -> None:
        """Add a chunk's per-arch statistics to the whole set's (exact merge)."""
        key = id(bn)
        if key not in self.pooled:
            zeros = torch.zeros(self.a, mean.shape[1], dtype=torch.float64, device=mean.device)
            self.pooled[key] = [torch.zeros(self.a, 1, dtype=torch.float64, device=mean.device),
                                zeros, zeros.clone()]
        count, mu, m2 = self.pooled[key]
        sel = slice(None) if idx is None else idx
        count[sel], mu[sel], m2[sel] = merge_moments(count[sel], mu[sel], m2[sel], mean,
                                                     var_b, n)

    def _stats(self, key: int, unbiased: bool) -> tuple[torch.Tensor, torch.Tensor]:
        count, mu, m2 = self.pooled[key]
        return mu, m2 / (count - 1 if unbiased else count).clamp(min=1)

    def movement(self) -> float:
        """Largest relative move of any pooled statistic since the previous sweep."""
        moved = []
        for key in self.pooled:
            if key not in self.fixed:
                return float("inf")
            mean, var = self._stats(key, unbiased=False)
            old_mean, old_var = (t.double() for t in self.fixed[key])
            denom = old_var + 1e-5
            moved.append(torch.maximum(((mean - old_mean).abs() / denom.sqrt()).max(),
                                       ((var - old_var).abs() / denom).max()))
        return float(torch.stack(moved).max().cpu()) if moved else 0.0

    def fix(self) -> None:
        """This sweep's statistics normalise the next sweep (mode ``refine``)."""
        self.fixed = {key: tuple(t.float() for t in self._stats(key, unbiased=False))
                      for key in self.pooled}
        self.pooled = {}
        self.mode = "refine"

    def finish(self) -> None:
        """The pooled statistics become the evaluation statistics (mode ``eval``)."""
        self.final = {key: tuple(t.float() for t in self._stats(key, unbiased=True))
                      for key in self.pooled}
        self.mode = "eval"


class FastNB201Scorer(ScorerBase):
    """Top-1 accuracy and mean cross-entropy of NB201 archs, ``archs_per_pass`` at once.

    Same inputs and BN semantics as ``SubnetScorer`` (uint8 images normalised once, in
    the order given; calibration in chunks of ``calib_batch_size``, default all at once
    within ``default_calib_chunk``'s bound for a pass of ``archs_per_pass`` archs).
    """

    def __init__(self, supernet: nn.Module, eval_images_u8: torch.Tensor,
                 eval_labels: torch.Tensor, calib_images_u8: torch.Tensor | None = None, *,
                 bn_mode: str = "recalibrate", batch_size: int = 256,
                 calib_batch_size: int | None = None, archs_per_pass: int = 32,
                 device: str | torch.device | None = None, amp: bool | None = None) -> None:
        super().__init__(eval_images_u8, eval_labels, calib_images_u8, bn_mode=bn_mode,
                         batch_size=batch_size, calib_batch_size=calib_batch_size,
                         device=device, amp=amp, subnets=max(1, int(archs_per_pass)))
        self.net = supernet.to(self.device)
        self.space = supernet.space
        dtype = next(supernet.parameters()).dtype

        def prep(u8: torch.Tensor) -> torch.Tensor:
            # activations are channels-last throughout (archs are gathered in NHWC views)
            x = normalize(u8.to(self.device), dtype=dtype)
            return x.contiguous(memory_format=torch.channels_last)
        self.images = prep(eval_images_u8)
        self.calib = prep(calib_images_u8) if self.bn_mode == "recalibrate" else None
        self.archs_per_pass = max(1, int(archs_per_pass))
        self.archs_scored = 0

    # ------------------------------------------------------------------- forward
    def _forward(self, x: torch.Tensor, plan: list, bn: _PassBN, a: int) -> torch.Tensor:
        """Logits ``[A, B, classes]`` of the pass's archs on the images ``x``."""
        net = self.net
        b = x.shape[0]
        conv, stem_bn = net.stem
        h = F.conv2d(x, conv.weight, None, conv.stride, conv.padding)
        v = split_archs(h.contiguous(memory_format=torch.channels_last), 1)
        h = merge_archs(v.expand(a, *v.shape[1:]).contiguous())   # arch-major [A*B, C, H, W]
        h = bn(h, stem_bn, None, a)
        for block in net.cells:
            if hasattr(block, "conv_a"):
                pool, down = block.downsample
                y = self._rcb(self._rcb(h, block.conv_a, bn, None, a), block.conv_b, bn, None, a)
                h = F.conv2d(pool(h), down.weight) + y
            else:
                h = self._cell(block, h, plan, bn, a)
        last_bn, _ = net.lastact
        h = F.relu(bn(h, last_bn, None, a))
        h = torch.flatten(net.pool(h), 1)
        return net.classifier(h).view(a, b, -1)

    @staticmethod
    def _rcb(x: torch.Tensor, block: nn.Module, bn: _PassBN, idx, k: int) -> torch.Tensor:
        _, conv, norm = block.op
        y = F.conv2d(F.relu(x), conv.weight, None, conv.stride, conv.padding)
        return bn(y.contiguous(memory_format=torch.channels_last), norm, idx, k)

    def _cell(self, cell: nn.Module, x: torch.Tensor, plan: list, bn: _PassBN,
              a: int) -> torch.Tensor:
        nodes = [x]
        shape = split_archs(x, a).shape                  # [A, B, H, W, C]
        for to in range(1, 4):
            total = torch.zeros(shape, dtype=x.dtype, device=x.device)
            for e, (dst, src) in enumerate(EDGES):
                if dst != to:
                    continue
                src_v = split_archs(nodes[src], a)
                for o, idx, k in plan[e]:
                    inp = nodes[src] if idx is None else merge_archs(src_v.index_select(0, idx))
                    if o == SKIP:
                        y = inp
                    elif o == POOL:
                        y = F.avg_pool2d(inp, 3, 1, 1, count_include_pad=False)
                    else:
                        y = self._rcb(inp, cell.edges[e][o], bn, idx, k)
                    y_v = split_archs(y.contiguous(memory_format=torch.channels_last), k)
                    if idx is None:
                        total.add_(y_v)
                    else:
                        total.index_add_(0, idx, y_v)
            nodes.append(merge_archs(total))
        return nodes[3]

    def _plan(self, archs: Sequence[Sequence[int]]) -> list:
        """Per edge: (op, arch positions as a device tensor or None for all, count)."""
        plan = []
        for e in range(len(EDGES)):
            entries = []
            for o in range(len(OPS)):
                if o == NONE:
                    continue
                pos = [i for i, arch in enumerate(archs) if arch[e] == o]
                if not pos:
                    continue
                idx = None if len(pos) == len(archs) else torch.tensor(pos, device=self.device)
                entries.append((o, idx, len(pos)))
            plan.append(entries)
        return plan

    # ------------------------------------------------------------------- scoring
    def _calibrate(self, plan: list, bn: _PassBN, a: int) -> None:
        """Pool every BN's per-arch statistics over the calibration chunks; with several
        chunks, sweep again normalising by the previous sweep's whole-set statistics until
        they hold still (``track1.scoring.bn.recalibrate``'s rule)."""
        sweeps = 0
        while True:
            chunks = 0
            for lo in range(0, len(self.calib), self.calib_batch_size):
                self._forward(self.calib[lo:lo + self.calib_batch_size], plan, bn, a)
                chunks += 1
            sweeps += 1
            if chunks <= 1:
                break
            change = bn.movement()
            if change <= CALIB_TOL or sweeps >= sweep_limit(len(bn.pooled)):
                break
            bn.fix()
        self.count_calibration(sweeps, change <= CALIB_TOL if chunks > 1 else True)
        bn.finish()

    def _score_pass(self, archs: list) -> list[SubnetScore]:
        a = len(archs)
        plan = self._plan(archs)
        bn = _PassBN(a, "calib", stored=self.bn_mode == "stored")
        with torch.inference_mode(), self._autocast():
            if self.bn_mode == "recalibrate":
                self._calibrate(plan, bn, a)
            else:
                bn.mode = "batch" if self.bn_mode == "batch" else "eval"
            tally = Tally(len(self.images), self.device, subnets=a)
            for lo in range(0, len(self.images), self.batch_size):
                x = self.images[lo:lo + self.batch_size]
                tally.add(self._forward(x, plan, bn, a), self.labels[lo:lo + len(x)], lo)
        return tally.scores()

    def evaluate_many(self, archs: Iterable, on_result: Callable | None = None
                      ) -> list[SubnetScore]:
        """The scores of every arch (archs or codes), in order; ``on_result(arch, score)``
        sees each pass's results as they land."""
        archs = [self.space.decode(x) if isinstance(x, str) else tuple(x) for x in archs]
        out: list[SubnetScore] = []
        was_training = self.net.training
        self.net.eval()
        try:
            for lo in range(0, len(archs), self.archs_per_pass):
                group = archs[lo:lo + self.archs_per_pass]
                start = time.perf_counter()
                results = self._score_pass(group)
                self.seconds += time.perf_counter() - start
                self.archs_scored += len(group)
                out += results
                if on_result is not None:
                    for arch, score in zip(group, results):
                        on_result(arch, score)
        finally:
            self.net.train(was_training)
        return out
