"""The evaluate pipeline: score the official list of subnets with the scoring core
(``track1.scoring``), keep every result in crash-safe per-rank logs, and write the
challenge JSON (``runner.Evaluation``); the submission validator and the rank report.

    from track1.evaluate.options import EvalOptions
    from track1.evaluate.runner import Evaluation
    report = Evaluation(EvalOptions(checkpoint="supernet_ckpt/demo/last.pth", limit=20)).run()

Submodules are imported where used, so that ``track1.evaluate.defaults`` (which the CLI
reads for its help text) loads no torch.
"""
