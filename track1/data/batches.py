"""Training batches whose content is a pure function of (seed, epoch, rank, world_size).

Why: a resumed run must see exactly the batches the killed run would have seen, and
the trainer must not care whether the data is a small set held on the device or a
large ImageFolder streamed from disk. Two paths, one interface:

- in memory (small sets: the embedded demo, CIFAR-10, ImageNet-mini on a big GPU):
  every image decoded once into a uint8 tensor on ``device``; each step gathers a
  batch and augments it ON THE DEVICE as a whole (crop+flip by index arithmetic,
  random-resized-crop by one ``grid_sample``), so the CPU never becomes the bottleneck.
- streaming (ImageNet): a ``DataLoader`` with workers over a seeded per-rank shard,
  torchvision transforms driven by a per-sample seed.

Sample order: one permutation per (seed, epoch) shared by all ranks, rank r takes
positions r::world_size (as ``DistributedSampler`` does). Augmentation draws come
from a generator seeded by (seed, epoch, rank, world_size, step), and the multiscale
size by (seed, epoch, step), identical on every rank. ``iter_from(step)`` therefore
resumes mid-epoch exactly.
"""
from __future__ import annotations

import math
import random
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from track1.data.decode import decode_to_tensor, normalize, preprocess
from track1.data.sources import BytesSource, DataError, ImageSource

AUGMENTS = ("rrc", "crop_flip", "none")
#: in-memory path when the decoded set fits in this many bytes (and has <= 100k images)
IN_MEMORY_MAX_BYTES = 8 * 1024 ** 3
IN_MEMORY_MAX_IMAGES = 100_000


def mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from integers (order matters)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]
               & np.uint64(0x7FFFFFFFFFFFFFFF))


def _rrc_boxes(g: torch.Generator, n: int, scale: tuple[float, float],
               ratio: tuple[float, float], attempts: int = 10) -> tuple[torch.Tensor, ...]:
    """Random-resized-crop boxes as fractions of the side: (x0, y0, w, h), each [n].

    Like torchvision: up to ``attempts`` draws of area and log aspect ratio, the first
    that fits wins; none fitting -> the whole image.
    """
    area = torch.empty(n, attempts).uniform_(scale[0], scale[1], generator=g)
    log_r = torch.empty(n, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    r = torch.exp(log_r)
    w, h = torch.sqrt(area * r), torch.sqrt(area / r)
    ok = (w <= 1) & (h <= 1)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    rows = torch.arange(n)
    pick = first.clamp(min=0)
    w = torch.where(first >= 0, w[rows, pick], torch.ones(n))
    h = torch.where(first >= 0, h[rows, pick], torch.ones(n))
    x0 = torch.rand(n, generator=g) * (1 - w)
    y0 = torch.rand(n, generator=g) * (1 - h)
    return x0, y0, w, h


class _StreamingDataset(torch.utils.data.Dataset):
    """Items are (index, sample seed, output size); returns (uint8 CHW tensor, label)."""

    def __init__(self, source: ImageSource, augment: str, rrc_scale: tuple[float, float],
                 rrc_ratio: tuple[float, float]) -> None:
        self.source, self.augment = source, augment
        self.rrc_scale, self.rrc_ratio = rrc_scale, rrc_ratio

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        import torchvision.transforms.functional as TF
        index, sample_seed, size = item
        image, label = self.source.load(index)
        rng = random.Random(sample_seed)
        if self.augment == "rrc":
            W, H = image.size
            box = None
            for _ in range(10):
                area = W * H * rng.uniform(*self.rrc_scale)
                r = math.exp(rng.uniform(math.log(self.rrc_ratio[0]), math.log(self.rrc_ratio[1])))
                w, h = round(math.sqrt(area * r)), round(math.sqrt(area / r))
                if 0 < w <= W and 0 < h <= H:
                    box = (rng.randint(0, H - h), rng.randint(0, W - w), h, w)
                    break
            if box is None:
                box = (0, 0, H, W)
            image = TF.resized_crop(image, *box, [size, size], antialias=True)
            if rng.random() < 0.5:
                image = TF.hflip(image)
            return TF.pil_to_tensor(image), label
        array = preprocess(image, size, crop_ratio=1.0)
        tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        if self.augment == "crop_flip":
            pad = max(1, round(4 * size / 32))
            tensor = F.pad(tensor, (pad, pad, pad, pad))
            oy, ox = rng.randint(0, 2 * pad), rng.randint(0, 2 * pad)
            tensor = tensor[:, oy:oy + size, ox:ox + size]
            if rng.random() < 0.5:
                tensor = tensor.flip(-1)
            tensor = tensor.contiguous()
        return tensor, label


def _collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([t for t, _ in items]), torch.tensor([l for _, l in items], dtype=torch.int64)


class TrainBatches:
    """Deterministic, resumable training batches (see the module docstring).

    Iterating yields ``(images, labels)``: normalised float images [B, 3, S, S] and
    int64 labels, both on ``device``. ``len()`` is the number of steps per epoch for
    this rank.
    """

    def __init__(self, source: ImageSource, image_size: int, batch_size: int, *,
                 device: str | torch.device = "cpu", seed: int = 0, rank: int = 0,
                 world_size: int = 1, augment: str = "rrc",
                 multiscale: Sequence[int] | None = None, in_memory: bool | None = None,
                 workers: int = 4, channels_last: bool = False, drop_last: bool = True,
                 rrc_scale: tuple[float, float] = (0.08, 1.0),
                 rrc_ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 cache_dir: str | None = None, progress: bool = True,
                 subset: Sequence[int] | None = None) -> None:
        """``subset``: train on these indices of ``source`` only (e.g. one half of a
        ``track1.data.split.split_indices``); batches stay a pure function of the seed."""
        if augment not in AUGMENTS:
            raise DataError(f"unknown augment {augment!r}; choose from {list(AUGMENTS)}")
        if batch_size <= 0 or image_size <= 0:
            raise DataError(f"batch size and image size must be positive "
                            f"(got {batch_size}, {image_size})")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} outside world size {world_size}")
        self.subset = None
        if subset is not None:
            self.subset = torch.as_tensor(list(subset), dtype=torch.int64)
            if len(self.subset) == 0 or int(self.subset.min()) < 0 or \
                    int(self.subset.max()) >= len(source):
                raise DataError(f"training subset of {len(self.subset)} indices does not fit "
                                f"{source.name}'s {len(source)} images")
        self.num_images = len(source) if self.subset is None else len(self.subset)
        if self.num_images < world_size:
            raise DataError(f"{source.name} has {self.num_images} images, fewer than {world_size} ranks")
        self.source = source
        self.image_size, self.batch_size = int(image_size), int(batch_size)
        self.device = torch.device(device)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.augment = augment
        self.multiscale = [int(s) for s in multiscale] if multiscale else None
        self.workers, self.channels_last, self.drop_last = int(workers), channels_last, drop_last
        self.rrc_scale, self.rrc_ratio = tuple(rrc_scale), tuple(rrc_ratio)
        self.epoch = 0
        self.num_classes = source.num_classes
        self.decode_size = max([self.image_size] + (self.multiscale or []))
        if in_memory is None:
            nbytes = len(source) * 3 * self.decode_size ** 2
            in_memory = isinstance(source, BytesSource) or (
                len(source) <= IN_MEMORY_MAX_IMAGES and nbytes <= IN_MEMORY_MAX_BYTES)
        self.in_memory = bool(in_memory)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        if self.in_memory:
            images, labels = decode_to_tensor(source, self.decode_size, crop_ratio=1.0,
                                              cache_dir=cache_dir, progress=progress)
            self.images = images.to(self.device)
            self.labels = labels.to(self.device)
        self.per_rank = (self.num_images // world_size if drop_last
                         else math.ceil(self.num_images / world_size))

    # ----------------------------------------------------------------- schedule
    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = self.per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def rank_indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's sample indices for ``epoch``, in order (CPU int64)."""
        epoch = self.epoch if epoch is None else epoch
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0x5EED))
        n = self.num_images
        perm = torch.randperm(n, generator=g)
        if self.subset is not None:
            perm = self.subset[perm]
        total = self.per_rank * self.world_size
        if total > n:  # drop_last=False: wrap around so every rank has equal length
            perm = torch.cat([perm, perm[: total - n]])
        return perm[:total][self.rank::self.world_size]

    def step_size(self, step: int, epoch: int | None = None) -> int:
        """The output size of ``step`` (one multiscale draw, the same on every rank)."""
        if not self.multiscale:
            return self.image_size
        epoch = self.epoch if epoch is None else epoch
        return random.Random(mix_seed(self.seed, epoch, step, 0x51)).choice(self.multiscale)

    def _step_generator(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(
            mix_seed(self.seed, self.epoch, self.rank, self.world_size, step, 0xA06))

    # ---------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_from(0)

    def iter_from(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start_step .. len(self)-1`` of the current epoch."""
        if not 0 <= start_step <= len(self):
            raise DataError(f"start step {start_step} outside 0..{len(self)}")
        indices = self.rank_indices()
        if self.in_memory:
            return self._iter_memory(indices, start_step)
        return self._iter_stream(indices, start_step)

    def _finish(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    def _iter_memory(self, indices: torch.Tensor, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(start, len(self)):
            idx = indices[step * self.batch_size:(step + 1) * self.batch_size]
            g = self._step_generator(step)
            size = self.step_size(step)
            dev_idx = idx.to(self.device)
            batch = self._augment_batch(self.images[dev_idx], g, size)
            yield self._finish(batch, self.labels[dev_idx])

    def _augment_batch(self, batch: torch.Tensor, g: torch.Generator, size: int) -> torch.Tensor:
        """uint8 [B, 3, D, D] on device -> normalised float [B, 3, size, size]."""
        b, _, d, _ = batch.shape
        if self.augment == "rrc":
            x0, y0, w, h = _rrc_boxes(g, b, self.rrc_scale, self.rrc_ratio)
            flip = torch.rand(b, generator=g) < 0.5
            sx = torch.where(flip, -w, w)
            theta = torch.zeros(b, 2, 3)
            theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * x0 + w - 1
            theta[:, 1, 1], theta[:, 1, 2] = h, 2 * y0 + h - 1
            x = normalize(batch)
            grid = F.affine_grid(theta.to(x.device), [b, 3, size, size], align_corners=False)
            return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                                 align_corners=False)
        if self.augment == "crop_flip":
            pad = max(1, round(4 * d / 32))
            oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            flip = torch.rand(b, generator=g) < 0.5
            ar = torch.arange(d)
            rows = oy[:, None] + ar
            cols = torch.where(flip[:, None], ox[:, None] + (d - 1 - ar), ox[:, None] + ar)
            padded = F.pad(batch, (pad, pad, pad, pad))
            dev = batch.device
            batch = padded[torch.arange(b, device=dev)[:, None, None, None],
                           torch.arange(3, device=dev)[None, :, None, None],
                           rows.to(dev)[:, None, :, None], cols.to(dev)[:, None, None, :]]
        x = normalize(batch)
        if size != d:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=size < d)
        return x

    def _iter_stream(self, indices: torch.Tensor, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        steps = []
        for step in range(start, len(self)):
            size = self.step_size(step)
            lo = step * self.batch_size
            idx = indices[lo:lo + self.batch_size].tolist()
            steps.append([(i, mix_seed(self.seed, self.epoch, self.rank, self.world_size, lo + k), size)
                          for k, i in enumerate(idx)])
        if not steps:
            return
        dataset = _StreamingDataset(self.source, self.augment, self.rrc_scale, self.rrc_ratio)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=steps, num_workers=self.workers, collate_fn=_collate,
            pin_memory=self.device.type == "cuda", persistent_workers=False)
        non_blocking = self.device.type == "cuda"
        for images, labels in loader:
            images = normalize(images.to(self.device, non_blocking=non_blocking))
            yield self._finish(images, labels.to(self.device, non_blocking=non_blocking))
