"""What both scoring pipelines (``evaluate`` and ``search``) set up before they score:
the checkpoint (default: the latest under the home's ``supernet_ckpt/``), its supernet on
the device, the scoring images, the setup every score depends on, and the results folder
tied to that setup (``--fresh`` discards what a different setup left there)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from track1.infra.checkpoint import SUPERNET_KINDS, find_latest, require_kind
from track1.infra.resumable import claim_folder
from track1.registry import load_supernet, saved_image_size
from track1.scoring.images import ScoringImages
from track1.scoring.options import ScoringOptions


class ScoringSetup:
    """The checkpoint, its supernet and config, and the images a command scores on."""

    def __init__(self, opts: ScoringOptions, device: torch.device,
                 eval_images: int | None = None, command: str = "evaluate") -> None:
        # the default is the newest SUPERNET checkpoint: a stand-alone run or a few-shot part
        # saved later must not be scored in its place (issue 19, H1)
        self.ckpt_path = Path(opts.checkpoint) if opts.checkpoint else \
            find_latest(kinds=SUPERNET_KINDS)
        self.supernet, self.config = load_supernet(self.ckpt_path, device)
        require_kind(self.ckpt_path, self.config, SUPERNET_KINDS, command)
        self.space = self.supernet.space
        self.image_size = int(saved_image_size(self.config))
        self.num_classes = int((self.config.get("model") or {}).get("num_classes", 1000))
        self.images = ScoringImages.resolve(
            opts.data, self.image_size, self.num_classes,
            eval_images if eval_images is not None else opts.eval_images, opts.calib_images,
            opts.bn_mode == "recalibrate", what=f"the checkpoint {self.ckpt_path}")
        self.bn_mode = opts.bn_mode
        self.data = opts.data

    def fusion(self, fuse: str | None, cache: str | None, error: type[Exception],
               codes: Sequence[str] | None = None) -> tuple[dict[str, float], Any]:
        """``--fuse``'s weights and the ``Teacher`` that gives its proxies' values (``({},
        None)`` without it), checked before any work: a bad item, an unknown proxy or a
        missing cache file is one ``error`` line, and so is a cache whose values the teacher
        cannot extend alike (``Teacher.cannot_extend``) that lacks some of ``codes``, the
        archs the command will fuse (None: archs drawn from the space, any of them)."""
        if not fuse:
            return {}, None
        from track1.nas.teacher import Teacher
        from track1.scoring.fusion import parse_fuse
        try:
            weights = parse_fuse(fuse)
            teacher = Teacher(self.space, list(weights), cache_file=cache,
                              num_classes=self.num_classes, data=self.data)
        except (ValueError, FileNotFoundError) as e:
            raise error(str(e)) from None
        foreign = teacher.cannot_extend()
        if foreign and codes is None:
            key, how = next(iter(foreign.items()))
            raise error(f"--fuse-cache {cache}: its {key} values were {how}, which this "
                        f"command's own scoring of other archs would not match, and it draws "
                        f"archs from the whole space: drop --fuse-cache (every arch is then "
                        f"scored alike)")
        missing = teacher.missing_from_cache(list(codes)) if foreign else None
        if missing:
            key, n, first = missing
            raise error(f"--fuse-cache {cache}: lacks {key} for {n} of the {len(codes)} archs "
                        f"to fuse (first {first}), and its values were {foreign[key]}, which "
                        f"this command's own scoring would not match: complete the cache "
                        f"(track1 proxy-cache) or drop --fuse-cache")
        return weights, teacher

    def identity(self) -> dict[str, Any]:
        """Everything the scores depend on: the checkpoint (path, size, time), the space,
        the BN mode and the images (``ScoringImages.identity``, the scorer's version too)."""
        stat = self.ckpt_path.stat()
        return {"checkpoint": str(self.ckpt_path.resolve()), "ckpt_size": stat.st_size,
                "ckpt_mtime": int(stat.st_mtime), "space": self.space.name,
                "bn_mode": self.bn_mode, **self.images.identity()}


def claim_results(folder: Path, setup: dict[str, Any], *, fresh: bool, discard: Sequence[str],
                  error: type[Exception], records: str, elsewhere: str) -> None:
    """Tie ``folder`` (its ``setup.json``) to ``setup``: with ``fresh`` the files matching
    ``discard`` go first; a folder of another setup is one ``error`` line naming the keys
    that differ (``records`` says what it holds, ``elsewhere`` the other way out)."""
    meta = folder / "setup.json"
    if fresh and folder.exists():
        for pattern in discard:
            for p in folder.glob(pattern):
                p.unlink()
        meta.unlink(missing_ok=True)
    diff = claim_folder(meta, setup)
    if diff:
        raise error(f"{folder} holds {records} of a different setup (differs in: "
                    f"{', '.join(diff)}); pass --fresh to discard them or {elsewhere}")
