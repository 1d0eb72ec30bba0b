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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from track1.infra import distributed as D
from track1.infra import paths
from track1.infra.atomic import write_json_atomic
from track1.data.arch_list import ArchListError, load_arch_list
from track1.scoring.bn import check_bn_mode
from track1.evaluate.defaults import DEFAULT_CPU_LIMIT, DEFAULT_EVAL_IMAGES
from track1.evaluate.options import EvalOptions
from track1.scoring.engine import SubnetScorer
from track1.evaluate.errors import EvaluateError
from track1.evaluate.setup import ScoringSetup, claim_results
from track1.scoring.prefix import (PrefixScorer, shard_in_prefix_order,
                                    supports_prefix_sharing)
from track1.evaluate.results import (ResultsLock, ResultsLog, build_submission, collect,
                                     rank_file, read_results)
from track1.infra.hardware import bf16_is_native



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


def default_batch_size(device: torch.device, image_size: int) -> int:
    """Measured on a 2-core CPU (docs/BENCHMARKS.md): at 32 px one batch of ~2,000 images runs
    25% faster per image than 1,000; at ImageNet sizes activation memory caps it."""
    if device.type == "cuda":
        return 500
    return 2000 if image_size <= 64 else 64


def _fingerprint(setup: dict) -> str:
    return hashlib.sha1(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:12]


class Evaluation:
    """One evaluation run. The constructor validates everything (the list, the checkpoint,
    the data, the output path) before any work or any write; ``run`` opens the results
    folder (a fresh start or a matching setup), scores this rank's share of the entries not
    already there into its log, and on rank 0 writes the submission. ``state_dict`` says
    where the run stands (its setup, its results folder, what is scored)."""

    def __init__(self, opts: EvalOptions, log: Callable[[str], None] = print) -> None:
        check_bn_mode(opts.bn_mode)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.opts, self.log = opts, log
        # evaluation meets only at barriers, and its ranks finish at different times
        self.info = info = D.setup(opts.device, backend="gloo",
                                   timeout=datetime.timedelta(hours=48))
        full_list = load_arch_list(opts.archs) if opts.archs else None
        scoring = ScoringSetup(opts, info.device, opts.eval_images or DEFAULT_EVAL_IMAGES)
        self.ckpt_path, self.supernet, config = scoring.ckpt_path, scoring.supernet, scoring.config
        space = self.supernet.space
        if full_list is None:
            if getattr(space, "official_list", None) is None:
                raise EvaluateError(f"the {space.name!r} space has no official list: pass "
                                    "--archs a list file")
            full_list = load_arch_list(space.official_list)
        self.list_size = len(full_list)
        entries = list(full_list.items())
        limit = opts.limit
        if limit is None and info.device.type == "cpu":
            limit = DEFAULT_CPU_LIMIT
        if limit is not None and limit > 0:
            entries = entries[:limit]
        self.entries, self.archs = entries, {}
        for key, code in entries:
            try:
                self.archs[key] = space.decode(code)
            except ValueError as e:
                raise ArchListError(f"entry {key!r} does not fit the checkpoint's search space "
                                    f"{config.get('space')!r}: {e}") from None
        self.image_size, self.images = scoring.image_size, scoring.images
        self.num_classes = scoring.num_classes
        self.n_eval, self.n_calib = self.images.n_eval, self.images.n_calib
        self.amp = bf16_is_native(info.device) if opts.amp is None else opts.amp
        self.batch_size = opts.batch_size or default_batch_size(info.device, self.image_size)
        self.setup = {**scoring.identity(), "amp": self.amp,
                      "batch_size": self.batch_size if opts.bn_mode == "batch" else None}
        self.results_dir = Path(opts.results_dir) if opts.results_dir else \
            paths.runs_dir("evaluate") / _fingerprint(self.setup)
        official_name = getattr(space, "submission_name", None) or f"{space.name}_scores.json"
        self.out = submission_path(Path(opts.out) if opts.out else paths.submission_dir() / official_name,
                                   len(entries), self.list_size, official_name)
        self.wanted = dict(entries)
        self.fuse, self.fuse_teacher = scoring.fusion(opts.fuse, opts.fuse_cache, EvaluateError,
                                                      codes=[code for _, code in entries])
        self.prefix_sharing = opts.prefix_sharing and supports_prefix_sharing(self.supernet)

    # ------------------------------------------------------------------ state
    def done(self) -> tuple[dict[str, dict], int]:
        """Records in the results folder for this run's entries (same key AND same arch
        code: another list may reuse keys), and the number of damaged lines skipped."""
        found, damaged = read_results(self.results_dir)
        return {k: r for k, r in found.items() if self.wanted.get(k) == r.get("arch")}, damaged

    def state_dict(self) -> dict[str, Any]:
        return {"setup": dict(self.setup), "results_dir": str(self.results_dir),
                "entries": len(self.entries), "done": sorted(self.done()[0])}

    def shard(self) -> list[tuple[str, str]]:
        """This rank's share of the entries (contiguous in prefix order with prefix sharing,
        so shares keep their overlap; strided otherwise)."""
        rank, world = self.info.rank, self.info.world_size
        if self.prefix_sharing and world > 1:
            return [(k, self.wanted[k]) for k, _ in shard_in_prefix_order(
                [(k, self.archs[k]) for k, _ in self.entries], rank, world,
                self.supernet.segment_keys)]
        return self.entries[rank::world]

    # ------------------------------------------------------------------ steps
    def open_results(self) -> ResultsLock | None:
        """Rank 0 locks the results folder (held until the submission is written), and
        starts it fresh or checks that it holds results of this very setup."""
        lock = None
        if self.info.is_main:
            lock = ResultsLock(self.results_dir)
            try:
                claim_results(self.results_dir, self.setup, fresh=self.opts.fresh,
                              discard=["rank*.jsonl"], error=EvaluateError, records="results",
                              elsewhere="another --results-dir")
            except EvaluateError:
                lock.release()
                raise
        D.barrier(self.info)
        return lock

    def score(self, todo: list[tuple[str, str]], report: EvalReport) -> None:
        """Score ``todo`` into this rank's log, each result appended as it is produced."""
        opts, info = self.opts, self.info
        rank, world, device = info.rank, info.world_size, info.device
        eval_u8, eval_labels, calib_u8 = self.images.decode(opts.cache_dir, opts.progress)
        bar = None
        if opts.progress:
            from tqdm import tqdm
            bar = tqdm(total=len(todo), desc=f"rank {rank} subnets" if world > 1 else "subnets",
                       unit="net", dynamic_ncols=True, position=rank if world > 1 else None)
        start = time.perf_counter()
        with ResultsLog(rank_file(self.results_dir, rank)) as results, \
                SubnetScorer(self.supernet, eval_u8, eval_labels, calib_u8, bn_mode=opts.bn_mode,
                             batch_size=self.batch_size, calib_batch_size=opts.calib_batch_size,
                             device=device, amp=self.amp) as scorer:
            def record(key: str, acc: float) -> None:
                # top-5, the loss and each half's scores beside top-1 (the halves give the
                # scorer's noise floor); the submission keeps top-1
                last = scorer.last
                results.append({"key": key, "arch": self.wanted[key], "acc": acc,
                                "acc5": last.top5, "loss": last.loss,
                                "acc_halves": list(last.acc_halves),
                                "loss_halves": list(last.loss_halves)})
                report.accs[key] = acc
                report.scored += 1
                if bar is not None:
                    bar.update(1)

            remaining = [(k, self.archs[k]) for k, _ in todo]
            if self.prefix_sharing:
                try:
                    prefix = PrefixScorer(scorer, opts.prefix_cache_bytes)
                    for key, _, acc in prefix.score_many(remaining):
                        record(key, acc)
                except (torch.OutOfMemoryError, RuntimeError) as e:
                    if "out of memory" not in str(e).lower():
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    self.log("out of memory with prefix caching; going on one subnet at a time")
            for key, arch in remaining:
                if key not in report.accs:
                    record(key, scorer.score(arch))
        report.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()

    def write_submission(self, report: EvalReport) -> None:
        """Rank 0: every entry's result from every rank's log, written atomically."""
        results = {k: r for k, r in collect(self.results_dir).items()
                   if self.wanted.get(k) == r.get("arch")}
        try:
            submission = build_submission(self.entries, results)
        except KeyError as e:
            raise EvaluateError(f"no result for entry {e.args[0]!r} in {self.results_dir}; "
                                "rerun to finish it (nothing was written)") from None
        report.out = write_unless_fuller(submission, self.out)
        world = self.info.world_size
        if report.scored and len(self.entries) < self.list_size:
            rate = report.subnets_per_second * world
            need = self.list_size / rate
            self.log(f"scored {report.scored} subnets in {report.seconds:.1f} s "
                     f"({rate:.3f} subnets/s, {rate * report.images_per_subnet:.0f} images/s); "
                     f"the full list of {self.list_size} with these settings would need "
                     f"{_hours(need)} at this rate on this machine (pass --limit 0 for all). "
                     f"For scale: on one H200 at 224 px, with 2,048 calibration + 10,000 "
                     f"evaluation images, one window of the list's heaviest subnets projected "
                     f"2.7 h; across the whole list the executed work is about 28% less "
                     f"(docs/BENCHMARKS.md)")
        noise = split_half_of(results.values())
        if noise is not None:
            self.log(f"the scorer's noise floor: Kendall {noise['accuracy']:.3f} by top-1 and "
                     f"{noise['neg_loss']:.3f} by -loss between the scores on the two halves of "
                     f"the {self.n_eval} evaluation images, over {noise['n']} subnets")
        incomplete = (f"; incomplete: {len(submission):,} of {self.list_size:,} entries"
                      if len(submission) < self.list_size else "")
        self.log(f"wrote {self.out} ({len(submission)} entries{incomplete})")
        if self.fuse:
            fused_out = write_unless_fuller(self.fused(submission), fused_path(self.out))
            self.log(f"wrote {fused_out}: the supernet's ranks fused with "
                     + ", ".join(f"{n} (weight {w:g})" for n, w in self.fuse.items()))

    def fused(self, submission: dict[str, dict]) -> dict[str, dict]:
        """The submission's entries scored by the weighted mean of ranks of the supernet's
        top-1 and the ``--fuse`` proxies (``track1.scoring.fusion``): values in [0, 1] whose
        order is the fused ranking (the challenge ranks them)."""
        from track1.scoring.fusion import SUPERNET, fuse
        keys = list(submission)
        scores = {SUPERNET: [submission[k]["acc"] for k in keys]}
        for name in self.fuse:
            scores[name] = [self.fuse_teacher.prior(name, self.archs[k]) for k in keys]
        return {k: {"acc": v, "arch": submission[k]["arch"]}
                for k, v in zip(keys, fuse(scores, self.fuse))}

    def run(self) -> EvalReport:
        """Score what is missing and write the submission; returns what was done."""
        info, opts = self.info, self.opts
        report = EvalReport(out=None, results_dir=self.results_dir,
                            total_entries=len(self.entries), list_size=self.list_size,
                            images_per_subnet=self.n_eval + self.n_calib, rank=info.rank,
                            world_size=info.world_size)
        lock = self.open_results()
        try:
            done, damaged = self.done()
            shard = self.shard()
            todo = [(k, c) for k, c in shard if k not in done]
            report.skipped = len(shard) - len(todo)
            if info.is_main:
                if damaged:
                    self.log(f"{damaged} damaged record(s) in {self.results_dir} skipped (every "
                             "other record kept); their subnets are scored again")
                where = f"{info.world_size} ranks, " if info.distributed else ""
                self.log(f"evaluate: checkpoint {self.ckpt_path}")
                self.log(f"evaluate: {len(self.entries)} of {self.list_size} subnets ({where}"
                         f"{report.skipped} already in {self.results_dir}), {self.n_eval} eval + "
                         f"{self.n_calib} calibration images at {self.image_size}px, BN "
                         f"{opts.bn_mode}, device {info.device}, "
                         f"{'bf16 autocast' if self.amp else 'fp32'}"
                         f"{' (--amp auto)' if opts.amp is None else ''}")
            if todo:
                self.score(todo, report)
            D.barrier(info)
            if info.is_main:
                self.write_submission(report)
        finally:
            if lock is not None:
                lock.release()
        return report


def evaluate(opts: EvalOptions, log: Callable[[str], None] = print) -> EvalReport:
    """Run the whole pipeline; returns what was done (rank 0 also writes the submission)."""
    return Evaluation(opts, log).run()


def submission_path(out: Path, n_entries: int, list_size: int, official_name: str) -> Path:
    """Where a run of ``n_entries`` of a ``list_size`` list writes: a partial run never
    takes the official file name (``<name>.partial.json`` instead), and no run replaces
    a file that holds more entries than it will (``EvaluateError``, before any work)."""
    if n_entries < list_size and out.name == official_name:
        out = out.with_name(out.stem + ".partial.json")
    if out.is_dir():
        raise EvaluateError(f"--out {out} is a directory; name a .json file")
    refuse_fuller(out, n_entries)
    return out


def fused_path(out: Path) -> Path:
    """Where the fused ranking goes: beside the submission, ``<name>.fused.json``."""
    return out.with_name(out.name[:-5] + ".fused.json" if out.name.endswith(".json")
                         else out.name + ".fused.json")


def held_entries(out: Path) -> int:
    """Entries of the submission file at ``out`` (0: none, unreadable, not a submission)."""
    try:
        with open(out, encoding="utf-8") as f:
            return len(json.load(f))
    except (OSError, ValueError, TypeError):
        return 0


def refuse_fuller(out: Path, n_entries: int) -> None:
    """``EvaluateError`` when ``out`` holds more entries than a run of ``n_entries`` has."""
    held = held_entries(out)
    if held > n_entries:
        raise EvaluateError(f"{out} already holds {held:,} entries, more than this run's "
                            f"{n_entries:,}: not overwritten (pass --out another file)")


def write_unless_fuller(submission: dict, out: Path) -> Path:
    """Write ``submission`` to ``out`` unless ``out`` holds more entries, checked and written
    under one lock on ``out`` (``<out>.lock``): a shorter run that started earlier can no
    longer overwrite a fuller file written meanwhile (it was checked at start only)."""
    import fcntl
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        refuse_fuller(out, len(submission))
        return write_json_atomic(submission, out)


def split_half_of(records: "Iterable[dict[str, Any]]") -> dict[str, float] | None:
    """Kendall between the subnets' scores on the two halves of the evaluation images, by
    top-1 and by -loss (None under 3 records with halves, or where a side is constant)."""
    from track1.scoring.metrics import kendall
    rows = [r for r in records if isinstance(r.get("acc_halves"), list)
            and isinstance(r.get("loss_halves"), list)]
    if len(rows) < 3:
        return None
    out = {"accuracy": kendall([r["acc_halves"][0] for r in rows],
                               [r["acc_halves"][1] for r in rows]),
           "neg_loss": kendall([-r["loss_halves"][0] for r in rows],
                               [-r["loss_halves"][1] for r in rows]), "n": len(rows)}
    return out if all(math.isfinite(v) for v in out.values()) else None


def _hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
