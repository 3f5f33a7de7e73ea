"""Which metric is an experiment's primary one, and which way is better: shared by the
report and ``sqltrack runs`` (no Jinja2, no Spark: cheap to import)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["is_timing", "lower_is_better", "rank_metrics"]

_LOWER_WORDS = frozenset(
    "loss logloss error err errors rmse mse mae mape time duration seconds fdr fnr fpr".split()
)  # a metric named with one of these words is better when lower
_TIMING_WORDS = frozenset(("time", "duration", "seconds"))
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Well-known quality metrics, preferred (in this order) as the default primary metric.
_PREFERRED = ("r2", "areaunderroc", "auc", "roc_auc", "accuracy", "f1", "areaunderpr", "rmse")


def _words(name: str) -> set[str]:
    """``areaUnderROC`` -> {area, under, roc}; ``val_loss`` -> {val, loss}."""
    return {w.lower() for w in _WORD.findall(name)}


def lower_is_better(metric: str) -> bool:
    return bool(_words(metric) & _LOWER_WORDS)


def is_timing(metric: str) -> bool:
    return bool(_words(metric) & _TIMING_WORDS)


def rank_metrics(metrics_of_runs: Iterable[Mapping[str, object]]) -> list[str]:
    """Metric keys, the primary one first: timings last; then the metric most runs logged;
    among equals a well-known quality metric (r2, areaUnderROC, auc, accuracy, f1, ...),
    then a score (higher is better) before a loss, then by name."""
    counts: dict[str, int] = {}
    for m in metrics_of_runs:
        for k in m:
            counts[k] = counts.get(k, 0) + 1

    def rank(k: str) -> tuple[bool, int, int, bool, str]:
        known = k.lower()
        preferred = _PREFERRED.index(known) if known in _PREFERRED else len(_PREFERRED)
        return (is_timing(k), -counts[k], preferred, lower_is_better(k), k)

    return sorted(counts, key=rank)
