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
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from track1.data.decode import normalize
from track1.scoring.bn import (DEFAULT_BN_MODE, PreserveBN, check_bn_mode, recalibrate,
                                set_bn_train)

#: on a CPU, calibration chunks hold at most this many input pixels (images x H x W:
#: 1,337 images at 224 px, all of any set at 32 px), so a default whole-set chunk cannot
#: exhaust the memory; on CUDA the whole set is one chunk (halved on out-of-memory)
CPU_CALIB_CHUNK_PIXELS = 2 ** 26


def default_calib_chunk(n: int, image_size: int, device: torch.device, subnets: int = 1) -> int:
    """Calibration images per chunk when none is given: the whole set (one chunk is exact
    in one sweep), capped on a CPU by ``CPU_CALIB_CHUNK_PIXELS`` over all the ``subnets``
    a pass carries."""
    if device.type == "cuda":
        return max(1, n)
    return max(1, min(n, CPU_CALIB_CHUNK_PIXELS // max(1, image_size * image_size * subnets)))

#: keep normalised float copies of the images when they need at most this many bytes
PRENORMALIZE_MAX_BYTES = 3 * 1024 ** 3


@dataclass(frozen=True)
class SubnetScore:
    """One subnet's scores on the evaluation images, and on each half of them.

    The images are in a seeded random order and the halves are its first and second
    half: two disjoint random samples. How well the halves' scores of many subnets agree
    (``split_half``) is the scorer's own noise floor: a ranking measured with the whole
    set cannot be trusted beyond it."""

    acc: float                      # top-1, a fraction
    top5: float
    loss: float                     # mean cross-entropy
    acc_halves: tuple[float, float]
    loss_halves: tuple[float, float]


class Tally:
    """Top-1 hits, top-5 hits and summed cross-entropy of one or several subnets over
    ``n`` evaluation images, per half (images ``[0, ceil(n/2))`` and the rest), kept on
    the device until read: one host sync per pass."""

    def __init__(self, n: int, device: torch.device, subnets: int = 1) -> None:
        self.n, self.half = n, (n + 1) // 2
        self.sums = torch.zeros(subnets, 2, 3, dtype=torch.float64, device=device)

    def add(self, logits: torch.Tensor, labels: torch.Tensor, lo: int) -> None:
        """A batch of evaluation images ``[lo, lo + B)``: logits ``[B, K]`` of one subnet
        or ``[S, B, K]`` of the tally's S subnets."""
        z = logits.float() if logits.dim() == 3 else logits.float()[None]
        s, b, k = z.shape
        top = z.topk(min(5, k), dim=2).indices
        hit1 = (z.argmax(2) == labels).double()
        hit5 = (top == labels[None, :, None]).any(2).double()
        ce = F.cross_entropy(z.reshape(s * b, k), labels.repeat(s), reduction="none")
        per = torch.stack([hit1, hit5, ce.view(s, b).double()], 2)     # [S, B, 3]
        cut = min(max(self.half - lo, 0), b)
        self.sums[:, 0] += per[:, :cut].sum(1)
        self.sums[:, 1] += per[:, cut:].sum(1)

    def scores(self) -> list[SubnetScore]:
        sums = self.sums.cpu()
        sizes = (self.half, max(self.n - self.half, 1))
        out = []
        for t in sums:
            total = t.sum(0) / self.n
            halves = [t[h] / sizes[h] for h in (0, 1)]
            out.append(SubnetScore(acc=float(total[0]), top5=float(total[1]),
                                   loss=float(total[2]),
                                   acc_halves=(float(halves[0][0]), float(halves[1][0])),
                                   loss_halves=(float(halves[0][2]), float(halves[1][2]))))
        return out


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


class ScorerBase:
    """What every scorer shares: checked inputs, the device (CUDA when there is one), bf16
    autocast on CUDA by default, cuDNN autotuning, the batch sizes (the calibration chunk
    by ``default_calib_chunk`` for ``subnets`` subnets a pass) and the counters of time and
    calibration sweeps. Subclasses place the images and run the forwards."""

    def __init__(self, eval_images_u8: torch.Tensor, eval_labels: torch.Tensor,
                 calib_images_u8: torch.Tensor | None, *, bn_mode: str, batch_size: int,
                 calib_batch_size: int | None, device: str | torch.device | None,
                 amp: bool | None, subnets: int = 1) -> None:
        self.bn_mode = check_scoring_inputs(bn_mode, eval_images_u8, eval_labels, calib_images_u8)
        self.device = scoring_device(device)
        cuda = self.device.type == "cuda"
        self.amp = cuda if amp is None else bool(amp)
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.labels = eval_labels.to(self.device, torch.int64)
        self.batch_size = max(1, int(batch_size))
        n_calib = len(calib_images_u8) if calib_images_u8 is not None and \
            self.bn_mode == "recalibrate" else 0
        self.calib_batch_size = max(1, int(
            calib_batch_size if calib_batch_size is not None else
            default_calib_chunk(max(n_calib, 1), eval_images_u8.shape[-1], self.device, subnets)))
        self.n_calib = n_calib
        self.seconds = 0.0
        self.calibrations = 0           # re-calibrations run (one per subnet or per pass),
        self.calib_sweeps = 0           # their sweeps over the chunks, and those that
        self.calib_unconverged = 0      # stopped at the sweep limit before converging

    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def count_calibration(self, sweeps: int, converged: bool) -> None:
        self.calibrations += 1
        self.calib_sweeps += sweeps
        self.calib_unconverged += not converged

    def calibration_stats(self) -> dict[str, float]:
        """Chunks per re-calibration and what the sweeps did, for a run's summary."""
        return {"calib_chunk": self.calib_batch_size,
                "calib_chunks": -(-self.n_calib // self.calib_batch_size),
                "calib_sweeps_mean": self.calib_sweeps / max(self.calibrations, 1),
                "calib_unconverged": self.calib_unconverged}


class SubnetScorer(ScorerBase):
    """Top-1 accuracy of subnets of ``supernet`` on fixed evaluation images.

    Use as a context manager (or call ``close()``): the supernet's stored BN
    statistics and train/eval flags are restored on exit.

    ``calib_images_u8`` (uint8, required for ``bn_mode="recalibrate"``) set every BN's
    statistics to those of the whole calibration set (``track1.scoring.bn.recalibrate``),
    forwarded in chunks of ``calib_batch_size`` (default: all at once, see
    ``default_calib_chunk``); the result does not depend on the chunking, nor on the
    evaluation ``batch_size`` (except in ``batch`` mode, where the evaluation batches
    ARE the BN statistics). Give the images in a random order (``ScoringImages`` does):
    evaluation batches and halves are taken in the order given.
    """

    def __init__(self, supernet: nn.Module, eval_images_u8: torch.Tensor,
                 eval_labels: torch.Tensor, calib_images_u8: torch.Tensor | None = None, *,
                 bn_mode: str = DEFAULT_BN_MODE, batch_size: int = 500,
                 calib_batch_size: int | None = None, device: str | torch.device | None = None,
                 amp: bool | None = None, channels_last: bool | None = None) -> None:
        super().__init__(eval_images_u8, eval_labels, calib_images_u8, bn_mode=bn_mode,
                         batch_size=batch_size, calib_batch_size=calib_batch_size,
                         device=device, amp=amp)
        cuda = self.device.type == "cuda"
        self.channels_last = True if channels_last is None else bool(channels_last)
        self.supernet = supernet.to(self.device)
        if self.channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        self.space = getattr(supernet, "space", None)
        # with autocast the inputs stay float32/bf16 cheaply; bf16 storage halves memory on CUDA
        dtype = torch.bfloat16 if (self.amp and cuda) else torch.float32
        self.eval_images = _Images(eval_images_u8, self.device, dtype, self.channels_last)
        self.calib = (_Images(calib_images_u8, self.device, dtype, self.channels_last)
                      if self.bn_mode == "recalibrate" else None)
        self._preserve = PreserveBN(self.supernet).__enter__()
        self.images_scored = 0
        self.last: SubnetScore | None = None

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
    @property
    def last_loss(self) -> float:
        """Mean cross-entropy of the subnet scored last."""
        return self.last.loss if self.last is not None else float("nan")

    @property
    def last_top5(self) -> float:
        return self.last.top5 if self.last is not None else float("nan")

    def calibrate(self, forward: Callable | None = None) -> None:
        """Re-calibrate the active subnet's BNs on the calibration images (counted)."""
        c = recalibrate(self.supernet, lambda: (x for _, x in self.calib.batches(
            self.calib_batch_size)), forward)
        self.count_calibration(c.sweeps, c.converged)

    def activate(self, arch) -> None:
        """``set_arch`` with a code decoded by the supernet's own space."""
        if isinstance(arch, str) and self.space is not None:
            arch = self.space.decode(arch)
        self.supernet.set_arch(arch)

    def _score_once(self, batch_size: int) -> float:
        net = self.supernet
        with torch.inference_mode(), self._autocast():
            if self.bn_mode == "recalibrate":
                self.calibrate()
            else:
                set_bn_train(net, self.bn_mode == "batch")
            tally = Tally(self.eval_images.n, self.device)
            for lo, x in self.eval_images.batches(batch_size):
                tally.add(net(x), self.labels[lo:lo + len(x)], lo)
        self.last = tally.scores()[0]
        return self.last.acc

    def evaluate(self, arch) -> tuple[float, float]:
        """(top-1 accuracy as a fraction, mean cross-entropy) of ``arch``."""
        acc = self.score(arch)
        return acc, self.last_loss

    def score(self, arch) -> float:
        """Top-1 accuracy (a fraction) of ``arch`` (an arch of the space, or its code);
        the pass's other scores (loss, top-5, each half's) are left in ``last``."""
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
