"""The NAS-Bench-201 ranking bench: train supernets at equal budget and seed, score a
fixed set of archs, and measure the ranking against real stand-alone accuracies.

Layout under ``out`` (every step resumable; a finished run is skipped)::

    out/<method>_s<seed>/ckpt/supernet/last.pth   the shared trainer's checkpoint
    out/<method>_s<seed>/ckpt/supernet/at010.pth  the checkpoint at 10% of the budget
    out/<method>_s<seed>/predictions.csv          arch, pred, gt, loss, each half's scores
    out/<method>_s<seed>/predictions_at010.csv    the same set scored at 10% of the budget
    out/<method>_s<seed>/summary.json             metrics, noise floor, curve, protocol, budget
    out/bn_compare/<run>/predictions_<mode>.csv   one trained supernet under each BN mode

Modules: ``protocols`` and ``methods`` (what is trained, torch-free for the CLI's help),
``config`` (a run's trainer config), ``data`` (the scored archs and images),
``predictions`` (scoring into resumable CSVs and the metrics read from them), ``run``
(one method and seed: ``BenchRun``), ``fewshot``, ``bn_compare`` and ``device_plan``
(what fits one GPU command). Training is the team's trainer (``track1.train``); on a GPU
the step runs as one static graph (``track1.nb201.fast``) and scoring carries many archs
per forward (``track1.nb201.fast_scorer``). Ground truth is read only after scoring, to
measure.
"""
