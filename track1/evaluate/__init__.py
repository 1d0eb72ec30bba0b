"""Scoring many subnets of a supernet: BN handling, the engine, crash-safe results,
rank metrics and the submission validator.

    from track1.evaluate import SubnetScorer
    with SubnetScorer(supernet, eval_u8, labels, calib_u8, bn_mode="recalibrate") as s:
        accs = s.score_many(entries)          # {key: top-1 fraction}
"""
from track1.evaluate.bn import (BN_MODES, DEFAULT_BN_MODE, PreserveBN, recalibrate,
                                reset_bn_statistics, set_bn_train)
from track1.evaluate.engine import ScoringError, SubnetScorer, score_subnets
from track1.evaluate.metrics import (concordant_pair_ratio, kendall, pearson, rank_correlations,
                                     spearman, top_k_precision)
from track1.evaluate.results import ResultsLog, collect, read_jsonl, write_json_atomic

__all__ = ["BN_MODES", "DEFAULT_BN_MODE", "PreserveBN", "ResultsLog", "ScoringError",
           "SubnetScorer", "collect", "concordant_pair_ratio", "kendall", "pearson",
           "rank_correlations", "read_jsonl", "recalibrate", "reset_bn_statistics",
           "score_subnets", "set_bn_train", "spearman", "top_k_precision", "write_json_atomic"]
