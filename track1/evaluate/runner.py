"""The ``evaluate`` pipeline: checkpoint + list + data -> resumable per-rank logs -> JSON.

Why a library module: the CLI, the tests and the benchmark call the same code.
Steps: load and validate everything first (list, checkpoint, data; one clear error,
nothing written), decode the images once, shard the list over K ranks under torchrun
(with prefix sharing, rank r takes the r-th of K contiguous ranges of the list in
prefix order; otherwise entries r::K), skip keys already in any rank log of the results
folder, score the rest appending each result as it lands, then rank 0 waits for all
ranks and writes the final JSON atomically.

The results folder carries ``setup.json``, a fingerprint of everything that changes
the numbers (checkpoint, data, image counts, BN mode, precision); resuming into a
folder made with a different setup is refused instead of mixing results.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from track1.checkpoint import CheckpointError, find_latest, load_checkpoint
from track1.data import DataError, decode_to_tensor, resolve_source
from track1.evaluate.arch_list import ArchListError, load_arch_list
from track1.evaluate.bn import DEFAULT_BN_MODE, check_bn_mode
from track1.evaluate.engine import SubnetScorer
from track1.evaluate.errors import EvaluateError
from track1.evaluate.prefix import (PrefixScorer, shard_in_prefix_order,
                                    supports_prefix_sharing)
from track1.evaluate.results import (ResultsLock, ResultsLog, build_submission, collect,
                                     rank_file, read_results, write_json_atomic)
from track1.hardware import bf16_is_native
from track1.messages import clip

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_OUT_DIR = ROOT / "submission"
DEFAULT_RESULTS_ROOT = ROOT / "runs" / "evaluate"
#: on CPU without --limit, score this many entries and project the full run
DEFAULT_CPU_LIMIT = 20
DEFAULT_CALIB_IMAGES = 2048
DEFAULT_EVAL_IMAGES = 10_000
SUBSET_SEED = 0


@dataclass
class EvalOptions:
    checkpoint: str | None = None
    archs: str | None = None
    data: str | None = None
    limit: int | None = None
    out: str | None = None
    bn_mode: str = DEFAULT_BN_MODE
    calib_images: int = DEFAULT_CALIB_IMAGES
    eval_images: int | None = None
    batch_size: int | None = None
    calib_batch_size: int = 1024
    device: str = "auto"
    results_dir: str | None = None
    fresh: bool = False
    amp: bool | None = None
    cache_dir: str | None = None
    progress: bool = True
    threads: int | None = None
    prefix_sharing: bool = True
    prefix_cache_bytes: int | None = None  # None: 8 GB on CPU, half the free GPU memory


@dataclass
class EvalReport:
    out: Path | None
    results_dir: Path
    scored: int = 0
    skipped: int = 0
    seconds: float = 0.0
    total_entries: int = 0
    list_size: int = 0
    images_per_subnet: int = 0
    rank: int = 0
    world_size: int = 1
    accs: dict = field(default_factory=dict)

    @property
    def subnets_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else math.nan


def subset_indices(n: int, k: int | None, seed: int) -> list[int] | None:
    """A fixed, class-balanced-in-expectation subset: the first ``k`` of a seeded
    permutation, sorted (None = all ``n``)."""
    if k is None or k >= n:
        return None
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:k].tolist())


def default_batch_size(device: torch.device, image_size: int) -> int:
    """Measured on CPU-2 (docs/BENCHMARKS.md): at 32 px one batch of ~2,000 images runs
    25% faster per image than 1,000; at ImageNet sizes activation memory caps it."""
    if device.type == "cuda":
        return 500
    return 2000 if image_size <= 64 else 64


def _dist_setup(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    from track1.distributed import pick_device
    try:  # auto / cpu / cuda: the trainer's rule (GPU = LOCAL_RANK); "cuda:N" as given
        dev = pick_device(device, local) if device in ("auto", "cpu", "cuda") else torch.device(device)
    except RuntimeError as e:
        raise EvaluateError(str(e)) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EvaluateError(f"--device {device} requested but CUDA is not available")
        torch.cuda.set_device(dev)
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            # gloo is only used for barriers; ranks finish at different times, so wait long
            dist.init_process_group("gloo", timeout=datetime.timedelta(hours=48))
    return rank, world, dev


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist
        dist.barrier()


def _fingerprint(setup: dict) -> str:
    return hashlib.sha1(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:12]


def load_supernet(path: str | os.PathLike, device: torch.device):
    """Rebuild the supernet of a checkpoint and load its weights (CheckpointError if not)."""
    from track1.registry import build_supernet
    ckpt = load_checkpoint(path)
    config = ckpt["config"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' is not a dict")
    for key, value in (("image_size", config.get("image_size", 224)),
                       ("model.num_classes", (config.get("model") or {}).get("num_classes", 1000))):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(f"{path}: its config's {key} is {clip(value)}, not a positive "
                                  "integer")
    try:
        net = build_supernet(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the supernet from its config: {e}") from None
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not fit the supernet of its config "
                              f"({' '.join(first[:2])[:200]})") from None
    return net.to(device).eval(), config


def evaluate(opts: EvalOptions, log=print) -> EvalReport:
    """Run the whole pipeline; returns what was done (rank 0 also writes ``opts.out``)."""
    check_bn_mode(opts.bn_mode)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    rank, world, device = _dist_setup(opts.device)
    # ---- everything is validated before any work or any write
    full_list = load_arch_list(opts.archs) if opts.archs else None
    ckpt_path = Path(opts.checkpoint) if opts.checkpoint else find_latest()
    supernet, config = load_supernet(ckpt_path, device)
    space = supernet.space
    if full_list is None:
        if getattr(space, "official_list", None) is None:
            raise EvaluateError(f"the {space.name!r} space has no official list: pass --archs "
                                "a list file")
        full_list = load_arch_list(space.official_list)
    entries = list(full_list.items())
    limit = opts.limit
    if limit is None and device.type == "cpu":
        limit = DEFAULT_CPU_LIMIT
    if limit is not None and limit > 0:
        entries = entries[:limit]
    archs = {}
    for key, code in entries:
        try:
            archs[key] = space.decode(code)
        except ValueError as e:
            raise ArchListError(f"entry {key!r} does not fit the checkpoint's search space "
                                f"{config.get('space')!r}: {e}") from None
    image_size = int(config.get("image_size", 224))
    num_classes = int(config.get("model", {}).get("num_classes", 1000))
    val = resolve_source(opts.data, "val")
    if val.num_classes != num_classes:
        raise DataError(f"the checkpoint {ckpt_path} has {num_classes} classes but the data "
                        f"{val.name} has {val.num_classes}")
    n_eval = min(len(val), opts.eval_images or DEFAULT_EVAL_IMAGES)
    eval_idx = subset_indices(len(val), n_eval, SUBSET_SEED)
    calib_source, calib_idx, n_calib = None, None, 0
    if opts.bn_mode == "recalibrate":
        calib_source = resolve_source(opts.data, "train")
        if calib_source.num_classes != num_classes:
            raise DataError(f"the checkpoint has {num_classes} classes but {calib_source.name} "
                            f"train/ has {calib_source.num_classes}")
        n_calib = min(len(calib_source), max(1, opts.calib_images))
        calib_idx = subset_indices(len(calib_source), n_calib, SUBSET_SEED + 1)
    amp = bf16_is_native(device) if opts.amp is None else opts.amp
    batch_size = opts.batch_size or default_batch_size(device, image_size)
    setup = {"checkpoint": str(ckpt_path.resolve()), "ckpt_size": ckpt_path.stat().st_size,
             "ckpt_mtime": int(ckpt_path.stat().st_mtime), "data": val.identity,
             "calib": calib_source.identity if calib_source else None, "image_size": image_size,
             "eval_images": n_eval, "calib_images": n_calib, "bn_mode": opts.bn_mode,
             "calib_batch_size": opts.calib_batch_size, "amp": amp,
             "batch_size": batch_size if opts.bn_mode == "batch" else None}
    results_dir = Path(opts.results_dir) if opts.results_dir else \
        DEFAULT_RESULTS_ROOT / _fingerprint(setup)
    official_name = getattr(space, "submission_name", None) or f"{space.name}_scores.json"
    out = submission_path(Path(opts.out) if opts.out else DEFAULT_OUT_DIR / official_name,
                          len(entries), len(full_list), official_name)
    report = EvalReport(out=None, results_dir=results_dir, total_entries=len(entries),
                        list_size=len(full_list), images_per_subnet=n_eval + n_calib,
                        rank=rank, world_size=world)
    # ---- results folder: fresh start or a matching setup
    meta = results_dir / "setup.json"
    lock = None
    if rank == 0:
        lock = ResultsLock(results_dir)   # held until the submission is written
        if opts.fresh and results_dir.exists():
            for p in results_dir.glob("rank*.jsonl"):
                p.unlink()
            meta.unlink(missing_ok=True)
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                old = None
            if old != setup:
                diff = sorted(k for k in setup if not isinstance(old, dict) or old.get(k) != setup[k])
                raise EvaluateError(f"results folder {results_dir} holds results of a different "
                                    f"setup (differs in: {', '.join(diff) or 'format'}); pass "
                                    "--fresh to discard them or another --results-dir")
        else:
            write_json_atomic(setup, meta, indent=1)
    _barrier(world)
    wanted = dict(entries)
    # a record counts only for the same key AND the same arch code (another list may reuse keys)
    found, damaged = read_results(results_dir)
    done = {k: r for k, r in found.items() if wanted.get(k) == r.get("arch")}
    prefix_sharing = opts.prefix_sharing and supports_prefix_sharing(supernet)
    if prefix_sharing and world > 1:  # contiguous in prefix order: shares keep their overlap
        shard = [(k, wanted[k]) for k, _ in shard_in_prefix_order(
            [(k, archs[k]) for k, _ in entries], rank, world, supernet.segment_keys)]
    else:
        shard = entries[rank::world]
    todo = [(k, c) for k, c in shard if k not in done]
    report.skipped = len(shard) - len(todo)
    if rank == 0:
        if damaged:
            log(f"{damaged} damaged record(s) in {results_dir} skipped (every other record "
                "kept); their subnets are scored again")
        where = f"{world} ranks, " if world > 1 else ""
        log(f"evaluate: {len(entries)} of {len(full_list)} subnets ({where}{report.skipped} "
            f"already in {results_dir}), {n_eval} eval + {n_calib} calibration images at "
            f"{image_size}px, BN {opts.bn_mode}, device {device}, "
            f"{'bf16 autocast' if amp else 'fp32'}{' (--amp auto)' if opts.amp is None else ''}")
    # ---- score
    if todo:
        eval_u8, eval_labels = decode_to_tensor(val, image_size, indices=eval_idx,
                                                cache_dir=opts.cache_dir, progress=opts.progress)
        calib_u8 = None
        if calib_source is not None:
            calib_u8, _ = decode_to_tensor(calib_source, image_size, indices=calib_idx,
                                           cache_dir=opts.cache_dir, progress=opts.progress)
        bar = None
        if opts.progress:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), desc=f"rank {rank} subnets" if world > 1 else "subnets",
                       unit="net", dynamic_ncols=True, position=rank if world > 1 else None)
        start = time.perf_counter()
        with ResultsLog(rank_file(results_dir, rank)) as results, \
                SubnetScorer(supernet, eval_u8, eval_labels, calib_u8, bn_mode=opts.bn_mode,
                             batch_size=batch_size, calib_batch_size=opts.calib_batch_size,
                             device=device, amp=amp) as scorer:
            def record(key: str, acc: float) -> None:
                results.append({"key": key, "arch": wanted[key], "acc": acc})
                report.accs[key] = acc
                report.scored += 1
                if bar is not None:
                    bar.update(1)

            remaining = [(k, archs[k]) for k, _ in todo]
            if prefix_sharing:
                try:
                    for key, _, acc in PrefixScorer(scorer, opts.prefix_cache_bytes).score_many(remaining):
                        record(key, acc)
                except (torch.OutOfMemoryError, RuntimeError) as e:
                    if "out of memory" not in str(e).lower():
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    log("out of memory with prefix caching; going on one subnet at a time")
            for key, arch in remaining:
                if key not in report.accs:
                    record(key, scorer.score(arch))
        report.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
    _barrier(world)
    # ---- merge (rank 0)
    if rank == 0:
        results = {k: r for k, r in collect(results_dir).items() if wanted.get(k) == r.get("arch")}
        try:
            submission = build_submission(entries, results)
        except KeyError as e:
            raise EvaluateError(f"no result for entry {e.args[0]!r} in {results_dir}; "
                                "rerun to finish it (nothing was written)") from None
        report.out = write_json_atomic(submission, out)
        if report.scored and len(entries) < len(full_list):
            rate = report.subnets_per_second * world
            need = len(full_list) / rate
            log(f"scored {report.scored} subnets in {report.seconds:.1f} s "
                f"({rate:.3f} subnets/s, {rate * report.images_per_subnet:.0f} images/s); the full "
                f"list of {len(full_list)} with these settings would need {_hours(need)} at this "
                f"rate on this machine "
                f"(pass --limit 0 for all). For scale: on one H200 at 224 px, with 2,048 "
                f"calibration + 10,000 evaluation images, the measured rate projects the full "
                f"list to 2.7 h (docs/BENCHMARKS.md)")
        incomplete = (f"; incomplete: {len(submission):,} of {len(full_list):,} entries"
                      if len(submission) < len(full_list) else "")
        log(f"wrote {out} ({len(submission)} entries{incomplete})")
    if lock is not None:
        lock.release()
    return report


def submission_path(out: Path, n_entries: int, list_size: int, official_name: str) -> Path:
    """Where a run of ``n_entries`` of a ``list_size`` list writes: a partial run never
    takes the official file name (``<name>.partial.json`` instead), and no run replaces
    a file that holds more entries than it will (``EvaluateError``, before any work)."""
    if n_entries < list_size and out.name == official_name:
        out = out.with_name(out.stem + ".partial.json")
    if out.is_dir():
        raise EvaluateError(f"--out {out} is a directory; name a .json file")
    if out.is_file():
        try:
            with open(out, encoding="utf-8") as f:
                held = len(json.load(f))
        except (OSError, ValueError, TypeError):
            held = 0  # unreadable or not a submission: an ordinary overwrite
        if held > n_entries:
            raise EvaluateError(f"{out} already holds {held:,} entries, more than this run's "
                                f"{n_entries:,}: not overwritten (pass --out another file)")
    return out


def _hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
