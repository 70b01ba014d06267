"""Classification metrics for fine-tuned tasks (scikit-learn), one function each.

MCC is the primary metric, as in GUE (DNABERT-2): unlike accuracy it stays near 0 for a model
that predicts the majority class, and it is defined for any number of classes. F1 is the macro
average (every class counts equally), AUROC is computed from probabilities — the positive class's
for two classes, one-vs-rest macro for more (splice).

Inputs are numpy arrays: ``labels`` (N,) int, ``preds`` (N,) int, ``probs`` (N, K) float rows
summing to 1.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm


def mcc(labels: np.ndarray, preds: np.ndarray) -> float:
    """Matthews correlation coefficient in [-1, 1]; 0 when either side has one class only."""
    return float(skm.matthews_corrcoef(labels, preds))


def f1(labels: np.ndarray, preds: np.ndarray, n_classes: int | None = None) -> float:
    """Macro F1 over the classes 0..n_classes-1 (default: those present in labels or preds)."""
    classes = None if n_classes is None else list(range(n_classes))
    return float(skm.f1_score(labels, preds, labels=classes, average="macro", zero_division=0))


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Fraction of correct predictions."""
    return float(skm.accuracy_score(labels, preds))


def auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Area under the ROC curve from probabilities (N, K).

    K = 2: the positive class's probability. K > 2: one-vs-rest, macro-averaged over the classes
    present in ``labels``. NaN when it is undefined (labels hold a single class).
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    present = np.unique(labels)
    if len(present) < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(skm.roc_auc_score(labels, probs[:, 1]))
    # one-vs-rest per present class: sklearn's multi_class='ovr' insists on every column's
    # class being present, which a small validation split may not satisfy
    scores = [skm.roc_auc_score(labels == k, probs[:, k]) for k in present]
    return float(np.mean(scores))


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """All four metrics (MCC first) plus the row count, predictions being the argmax of probs."""
    labels = np.asarray(labels)
    preds = np.asarray(probs).argmax(1)
    return {"mcc": mcc(labels, preds), "f1": f1(labels, preds, probs.shape[1]),
            "accuracy": accuracy(labels, preds), "auroc": auroc(labels, probs),
            "n": len(labels)}


def format_metrics_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per split (e.g. dev, test), columns MCC F1 accuracy AUROC n."""
    columns = ("mcc", "f1", "accuracy", "auroc", "n")
    lines = [f"{'split':<6}" + "".join(f"{c.upper() if c != 'accuracy' else 'ACC':>9}"
                                       for c in columns)]
    for split, row in results.items():
        cells = []
        for c in columns:
            value = row.get(c)
            if c == "n":
                cells.append(f"{value:>9d}")
            else:
                cells.append(f"{'n/a':>9}" if value is None or math.isnan(value)
                             else f"{value:>9.4f}")
        lines.append(f"{split:<6}" + "".join(cells))
    return "\n".join(lines)
