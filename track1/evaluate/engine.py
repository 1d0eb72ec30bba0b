"""Score many subnets of one supernet on fixed, pre-decoded images.

Generic over search spaces: the engine only needs a supernet that follows
``SupernetProtocol`` (``.space.decode(code)``, ``set_arch(arch)``, images -> logits).
Why it is fast: images arrive decoded once as uint8 tensors and are normalised once
(kept on the device when they fit); a subnet is activated by ``set_arch`` alone (no
deep copy, no static extraction); inference runs under ``torch.inference_mode`` with
large batches in channels_last layout (on CPU too, where oneDNN's NHWC convolutions
and max-pool are faster: ``tools/bench_cpu_forward.py``), bf16 autocast + cuDNN
autotuning on CUDA; correct counts stay on the device until the subnet is done (one
sync per subnet). On CUDA out-of-memory the batch is halved and the subnet retried.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from track1.data.decode import normalize
from track1.evaluate.bn import (DEFAULT_BN_MODE, PreserveBN, check_bn_mode, recalibrate,
                                set_bn_train)

#: keep normalised float copies of the images when they need at most this many bytes
PRENORMALIZE_MAX_BYTES = 3 * 1024 ** 3


def top1_top5_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[top-1 hits, top-5 hits]`` of a batch (top-k over min(5, classes) classes), as
    int64 on the logits' device (no sync). Ties at the boundary are broken as ``topk``
    breaks them, so top-1 here is ``argmax`` exactly."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    match = top == labels[:, None]
    return torch.stack([(logits.argmax(1) == labels).sum(), match.any(1).sum()])


class ScoringError(RuntimeError):
    """The scoring could not proceed (e.g. out of memory even at batch size 1)."""


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


class _Images:
    """Fixed model inputs, chunked into batches: normalised once when they fit, else
    normalised per batch from the uint8 tensor (both on the scorer's device)."""

    def __init__(self, images_u8: torch.Tensor, device: torch.device, dtype: torch.dtype,
                 channels_last: bool) -> None:
        self.n = int(images_u8.shape[0])
        self.dtype, self.channels_last = dtype, channels_last
        itemsize = torch.finfo(dtype).bits // 8
        self.data = images_u8.to(device)
        self.prenormalized = self.data.numel() * itemsize <= PRENORMALIZE_MAX_BYTES
        if self.prenormalized:
            self.data = self._prep(self.data)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize(x, dtype=self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def batches(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        for lo in range(0, self.n, batch_size):
            x = self.data[lo:lo + batch_size]
            yield lo, (x if self.prenormalized else self._prep(x))


def check_scoring_inputs(bn_mode: str, eval_images_u8: torch.Tensor, eval_labels: torch.Tensor,
                         calib_images_u8: torch.Tensor | None) -> str:
    """Validate a scorer's inputs (``ValueError`` naming the rule); returns the BN mode."""
    bn_mode = check_bn_mode(bn_mode)
    if bn_mode == "recalibrate" and (calib_images_u8 is None or len(calib_images_u8) == 0):
        raise ValueError("bn_mode 'recalibrate' needs calibration images")
    if eval_images_u8.dtype != torch.uint8 or eval_images_u8.dim() != 4:
        raise ValueError("evaluation images must be a uint8 tensor [N, 3, H, W]")
    if len(eval_images_u8) != len(eval_labels) or len(eval_labels) == 0:
        raise ValueError("need as many (and at least one) labels as evaluation images")
    return bn_mode


def scoring_device(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class SubnetScorer:
    """Top-1 accuracy of subnets of ``supernet`` on fixed evaluation images.

    Use as a context manager (or call ``close()``): the supernet's stored BN
    statistics and train/eval flags are restored on exit.

    ``calib_images_u8`` (uint8, required for ``bn_mode="recalibrate"``) are forwarded
    in chunks of ``calib_batch_size``, which never changes, so accuracies do not
    depend on the evaluation ``batch_size`` (except in ``batch`` mode, where the
    evaluation batches ARE the BN statistics).
    """

    def __init__(self, supernet: nn.Module, eval_images_u8: torch.Tensor,
                 eval_labels: torch.Tensor, calib_images_u8: torch.Tensor | None = None, *,
                 bn_mode: str = DEFAULT_BN_MODE, batch_size: int = 500,
                 calib_batch_size: int = 1024, device: str | torch.device | None = None,
                 amp: bool | None = None, channels_last: bool | None = None) -> None:
        self.bn_mode = check_scoring_inputs(bn_mode, eval_images_u8, eval_labels, calib_images_u8)
        self.device = scoring_device(device)
        cuda = self.device.type == "cuda"
        self.amp = cuda if amp is None else bool(amp)
        self.channels_last = True if channels_last is None else bool(channels_last)
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.supernet = supernet.to(self.device)
        if self.channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        self.space = getattr(supernet, "space", None)
        # with autocast the inputs stay float32/bf16 cheaply; bf16 storage halves memory on CUDA
        dtype = torch.bfloat16 if (self.amp and cuda) else torch.float32
        self.eval_images = _Images(eval_images_u8, self.device, dtype, self.channels_last)
        self.labels = eval_labels.to(self.device, torch.int64)
        self.calib = (_Images(calib_images_u8, self.device, dtype, self.channels_last)
                      if self.bn_mode == "recalibrate" else None)
        self.batch_size = max(1, int(batch_size))
        self.calib_batch_size = max(1, int(calib_batch_size))
        self._preserve = PreserveBN(self.supernet).__enter__()
        self.images_scored = 0
        self.last_loss = float("nan")
        self.last_top5 = float("nan")
        self.seconds = 0.0

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        if self._preserve is not None:
            self._preserve.__exit__(None, None, None)
            self._preserve = None

    def __enter__(self) -> "SubnetScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------- scoring
    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def activate(self, arch) -> None:
        """``set_arch`` with a code decoded by the supernet's own space."""
        if isinstance(arch, str) and self.space is not None:
            arch = self.space.decode(arch)
        self.supernet.set_arch(arch)

    def _score_once(self, batch_size: int) -> float:
        net = self.supernet
        with torch.inference_mode(), self._autocast():
            if self.bn_mode == "recalibrate":
                recalibrate(net, (x for _, x in self.calib.batches(self.calib_batch_size)))
            else:
                set_bn_train(net, self.bn_mode == "batch")
            hits = torch.zeros(2, dtype=torch.int64, device=self.device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            for lo, x in self.eval_images.batches(batch_size):
                logits = net(x)
                y = self.labels[lo:lo + len(x)]
                hits += top1_top5_hits(logits, y)
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        self.last_loss = loss_sum.item() / self.eval_images.n
        top1, top5 = hits.tolist()
        self.last_top5 = top5 / self.eval_images.n
        return top1 / self.eval_images.n

    def evaluate(self, arch) -> tuple[float, float]:
        """(top-1 accuracy as a fraction, mean cross-entropy) of ``arch``."""
        acc = self.score(arch)
        return acc, self.last_loss

    def score(self, arch) -> float:
        """Top-1 accuracy (a fraction) of ``arch`` (an arch of the space, or its code);
        the mean cross-entropy and the top-5 accuracy of the same pass are left in
        ``last_loss`` and ``last_top5``."""
        start = time.perf_counter()
        self.activate(arch)
        while True:
            try:
                acc = self._score_once(self.batch_size)
                break
            except (torch.OutOfMemoryError, RuntimeError) as e:
                if not _is_oom(e):
                    raise
                if self.batch_size == 1 and self.calib_batch_size == 1:
                    raise ScoringError(f"out of memory on {self.device} even with batch size 1; "
                                       "use a smaller image size or another device") from None
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch_size > 1:
                    self.batch_size //= 2
                else:  # changes recalibration chunks: only when nothing else is left
                    self.calib_batch_size //= 2
        self.images_scored += self.eval_images.n + (self.calib.n if self.calib is not None else 0)
        self.seconds += time.perf_counter() - start
        return acc

    def score_many(self, entries: Iterable[tuple[str, object]],
                   on_result: Callable[[str, object, float], None] | None = None
                   ) -> dict[str, float]:
        """Score ``(key, arch or code)`` pairs in order; ``on_result`` sees each as it lands."""
        out: dict[str, float] = {}
        for key, arch in entries:
            out[key] = acc = self.score(arch)
            if on_result is not None:
                on_result(key, arch, acc)
        return out


def score_subnets(supernet: nn.Module, entries: Sequence[tuple[str, object]],
                  eval_images_u8: torch.Tensor, eval_labels: torch.Tensor,
                  calib_images_u8: torch.Tensor | None = None, *,
                  bn_mode: str = DEFAULT_BN_MODE, **options) -> dict[str, float]:
    """One-call form of ``SubnetScorer``: ``{key: top-1 accuracy}`` for ``entries``."""
    with SubnetScorer(supernet, eval_images_u8, eval_labels, calib_images_u8,
                      bn_mode=bn_mode, **options) as scorer:
        return scorer.score_many(entries)
