"""Exact prefix sharing: evaluate many subnets without repeating shared layers.

Why: a residual block's output on fixed images depends only on the stem and the blocks
before it; with recalibration on fixed calibration images, so do its BN statistics.
Subnets that share a prefix (same stem width, same leading blocks) therefore repeat
identical work. In the official list 44.5% of all block MACs are such repeats
(``tools/bench_evaluate.py --prefix-analysis``). Scoring the subnets in prefix order
and keeping each prefix's activations (calibration and evaluation images) on a stack
skips them. Each segment is re-calibrated on the whole calibration set before the next
runs, so the statistics are those ``SubnetScorer`` computes (the same numbers up to float
rounding; with several calibration chunks, up to the sweeps' tolerance).

Works with any supernet that exposes its segments (the ResNet-48 supernet does: stem,
then every block): ``segment_keys(arch)`` lists an arch's segments in forward order as
hashable keys, ``segment(key)`` returns the module that runs one, set to its widths, and
``forward_head(x)`` maps the last segment's output to logits. Anything else falls back to
``SubnetScorer.score`` one subnet at a time.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from track1.scoring.bn import bn_layers, recalibrate
from track1.scoring.engine import SubnetScorer, Tally

#: cap on cached activations on CPU (bytes); deeper prefixes are recomputed, not cached
DEFAULT_CACHE_BYTES = 8 * 1024 ** 3
#: on CUDA the cap is this share of the memory free when scoring starts (a 224-px level of
#: 12k images is ~4.8 GB in bf16; the uncached working levels need room too)
CUDA_CACHE_SHARE = 0.5


def default_cache_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(CUDA_CACHE_SHARE * free)
    return DEFAULT_CACHE_BYTES


def supports_prefix_sharing(supernet: nn.Module) -> bool:
    """Whether ``supernet`` exposes the segments prefix sharing walks."""
    return all(callable(getattr(supernet, name, None))
               for name in ("segment_keys", "segment", "forward_head"))


def shard_in_prefix_order(entries: Sequence[tuple[str, object]], rank: int, world: int,
                          segment_keys: Callable[[object], list]) -> list[tuple[str, object]]:
    """Rank ``rank``'s share of ``(key, arch)`` entries: a contiguous range of the list in
    prefix order (every rank sorts alike, so the shares partition the list). Neighbours in
    prefix order share the most leading layers; a strided share would give each rank a
    thinned list whose prefixes repeat far less."""
    order = sorted(entries, key=lambda e: (segment_keys(e[1]), e[0]))
    n = len(order)
    return order[rank * n // world:(rank + 1) * n // world]


class PrefixScorer:
    """Wraps a ``SubnetScorer`` (its images, BN mode, batch sizes, device, precision)."""

    def __init__(self, scorer: SubnetScorer, cache_bytes: int | None = None) -> None:
        if not supports_prefix_sharing(scorer.supernet):
            raise TypeError("prefix sharing needs a supernet that exposes its segments")
        self.scorer, self.net = scorer, scorer.supernet
        self.cache_bytes = int(default_cache_bytes(scorer.device) if cache_bytes is None
                               else cache_bytes)
        self.stack: list[tuple[tuple, list[torch.Tensor] | None, list[torch.Tensor], int]] = []
        self.cached = 0

    # -------------------------------------------------------------- one segment
    def _run_segment(self, key: tuple, calib: list[torch.Tensor] | None,
                     evals: list[torch.Tensor]) -> tuple[list[torch.Tensor] | None, list[torch.Tensor]]:
        module = self.net.segment(key)
        mode = self.scorer.bn_mode
        calib_out = None
        if mode == "recalibrate":
            # the whole calibration set's statistics, as SubnetScorer's; the last sweep's
            # outputs (normalised with them) feed the next segment
            c = recalibrate(module, calib, collect=True)
            calib_out = c.outputs
            self.scorer.calib_sweeps += c.sweeps
            self.scorer.calib_unconverged += not c.converged
        for bn in bn_layers(module):
            bn.train(mode == "batch")
        return calib_out, [module(x) for x in evals]

    # ----------------------------------------------------------------- scoring
    def _inputs(self) -> tuple[list[torch.Tensor] | None, list[torch.Tensor]]:
        sc = self.scorer
        calib = ([x for _, x in sc.calib.batches(sc.calib_batch_size)]
                 if sc.bn_mode == "recalibrate" else None)
        evals = [x for _, x in sc.eval_images.batches(sc.batch_size)]
        return calib, evals

    def _score_arch(self, arch) -> float:
        keys = self.net.segment_keys(arch)
        common = 0
        while (common < len(self.stack) and common < len(keys)
               and self.stack[common][0] == keys[common]):
            common += 1
        while len(self.stack) > common:
            self.cached -= self.stack.pop()[3]
        if self.stack:
            _, calib, evals, _ = self.stack[-1]
        else:
            calib, evals = self._inputs()
        for depth in range(common, len(keys)):
            key = keys[depth]
            calib, evals = self._run_segment(key, calib, evals)
            size = sum(t.numel() * t.element_size() for t in evals + (calib or []))
            # the stack stays a contiguous prefix: once a level is not cached, none below is
            if len(self.stack) == depth and self.cached + size <= self.cache_bytes:
                self.stack.append((key, calib, evals, size))
                self.cached += size
        sc = self.scorer
        tally = Tally(sc.eval_images.n, sc.device)
        lo = 0
        for x in evals:
            tally.add(self.net.forward_head(x), sc.labels[lo:lo + len(x)], lo)
            lo += len(x)
        sc.last = tally.scores()[0]          # as SubnetScorer.score leaves it
        if sc.bn_mode == "recalibrate":
            sc.calibrations += 1
        return sc.last.acc

    def score_many(self, entries: Iterable[tuple[str, object]]) -> Iterator[tuple[str, object, float]]:
        """Yield ``(key, arch, accuracy)`` for every entry, in prefix order (not input order)."""
        sc = self.scorer
        items = []
        for key, arch in entries:
            if isinstance(arch, str):
                arch = sc.space.decode(arch)
            items.append((self.net.segment_keys(arch), key, arch))
        items.sort(key=lambda t: t[0])
        self.net.eval()
        try:
            for _, key, arch in items:
                # contexts per subnet, never held across a yield (they are thread-wide state)
                with torch.inference_mode(), sc._autocast():
                    self.net.set_arch(arch)  # validates; keeps the supernet's state coherent
                    acc = self._score_arch(arch)
                yield key, arch, acc
        finally:
            self.stack.clear()
            self.cached = 0
            self.net.eval()


def score_entries(scorer: SubnetScorer, entries: Sequence[tuple[str, object]],
                  cache_bytes: int | None = None) -> Iterator[tuple[str, object, float]]:
    """``(key, arch, accuracy)`` of every entry: with prefix sharing (in prefix order) where
    the scorer's supernet exposes its segments, else one at a time in the given order. The
    scorer's ``last`` (loss, top-5, halves) belongs to the entry just yielded."""
    if supports_prefix_sharing(scorer.supernet):
        yield from PrefixScorer(scorer, cache_bytes).score_many(entries)
    else:
        for key, arch in entries:
            yield key, arch, scorer.score(arch)
