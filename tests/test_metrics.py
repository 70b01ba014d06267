import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hyenadna.metrics import accuracy, auroc, classification_metrics, f1, format_metrics_table, mcc

# Binary case worked by hand: TP=2 TN=1 FP=1 FN=1.
Y = np.array([0, 0, 1, 1, 1])
P = np.array([0, 1, 1, 1, 0])


def test_binary_metrics_against_hand_computed_values():
    assert mcc(Y, P) == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))  # 1/6
    assert accuracy(Y, P) == pytest.approx(3 / 5)
    # class 1: precision = recall = 2/3 → F1 2/3; class 0: 1/2 → 1/2; macro 7/12
    assert f1(Y, P) == pytest.approx(7 / 12)


def test_multiclass_mcc_against_hand_computed_value():
    # correct c=3 of s=4; predicted counts p=[1,0,3]; true counts t=[1,1,2]
    # MCC = (c·s − Σ p·t) / sqrt((s² − Σ p²)(s² − Σ t²)) = (12 − 7) / sqrt(6 · 10)
    assert mcc(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2])) == pytest.approx(5 / math.sqrt(60))


def test_mcc_is_zero_for_a_constant_predictor():
    assert mcc(Y, np.ones_like(Y)) == 0.0


def test_f1_counts_absent_classes_when_told_k():
    assert f1(np.array([0, 1]), np.array([0, 1]), n_classes=3) == pytest.approx(2 / 3)


def test_auroc_binary_by_hand():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered right
    probs1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - probs1, probs1], 1)
    assert auroc(np.array([0, 0, 1, 1]), probs) == pytest.approx(0.75)


def test_auroc_one_vs_rest_by_hand():
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[.6, .3, .1], [.2, .5, .3], [.1, .2, .7], [.3, .6, .1]])
    # class 0: 1.0; class 1: positive .5 beats .3 and .2, not .6 → 2/3; class 2: 1.0
    assert auroc(labels, probs) == pytest.approx(8 / 9)
    assert auroc(labels, probs) == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))


def test_auroc_is_nan_with_one_class_and_ovr_skips_absent_classes():
    assert math.isnan(auroc(np.array([1, 1]), np.array([[.2, .8], [.6, .4]])))
    labels = np.array([0, 1, 0, 1])  # class 2 never occurs: averaged over classes 0 and 1
    probs = np.array([[.7, .2, .1], [.1, .8, .1], [.6, .3, .1], [.3, .6, .1]])
    assert auroc(labels, probs) == pytest.approx(1.0)


def test_classification_metrics_and_table():
    probs = np.array([[.9, .1], [.8, .2], [.3, .7], [.4, .6], [.6, .4]])
    result = classification_metrics(Y, probs)
    assert list(result) == ["mcc", "f1", "accuracy", "auroc", "n"]
    assert result["mcc"] == pytest.approx(mcc(Y, np.array([0, 0, 1, 1, 0])))
    assert result["n"] == 5
    table = format_metrics_table({"dev": result, "test": {**result, "auroc": None}})
    header, dev, test = table.splitlines()
    assert header.split()[:2] == ["split", "MCC"]
    assert dev.split()[1] == f"{result['mcc']:.4f}" and "n/a" in test
