"""Scoring subnets of a supernet on fixed images: the generic core that evaluation,
search, the training's ranking check and the NAS-Bench-201 bench all stand on.

- ``bn``: BN statistics per subnet (exact re-calibration on the whole calibration set,
  batch statistics, or the stored ones) and restoring the supernet's afterwards;
- ``engine``: ``SubnetScorer`` (one subnet at a time, top-1, top-5 and loss, each on both
  halves of the images: the scorer's noise floor) and the ``Tally`` behind it;
- ``prefix``: exact prefix sharing over supernets that expose their segments;
- ``images``: the fixed, seeded, randomly ordered images scores are taken on;
- ``metrics``: rank correlations between predicted and true scores;
- ``modes``: the BN modes and the scorer's version, torch-free (the CLI's help reads them).

    from track1.scoring.engine import SubnetScorer
    with SubnetScorer(supernet, eval_u8, labels, calib_u8, bn_mode="recalibrate") as s:
        accs = s.score_many(entries)          # {key: top-1 fraction}
"""
