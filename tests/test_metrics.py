import numpy as np
import pytest
from sklearn import metrics as skm

from nlp_cv_tricks.metrics.classification import classification_metrics, softmax


@pytest.mark.parametrize("k", [2, 4])
def test_metrics_equal_sklearn(k):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, 300)
    logits = rng.normal(size=(300, k)) + 1.5 * np.eye(k)[labels] * rng.random((300, 1))
    m = classification_metrics(logits, labels, [f"c{i}" for i in range(k)])
    preds = logits.argmax(1)
    probs = softmax(logits)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    assert m["f1_micro"] == pytest.approx(skm.f1_score(labels, preds, average="micro"))
    p, r, f, _ = skm.precision_recall_fscore_support(labels, preds)
    for i in range(k):
        assert m[f"precision/c{i}"] == pytest.approx(p[i])
        assert m[f"recall/c{i}"] == pytest.approx(r[i])
        assert m[f"f1/c{i}"] == pytest.approx(f[i])
    auc = skm.roc_auc_score(labels, probs[:, 1]) if k == 2 else skm.roc_auc_score(labels, probs, multi_class="ovr")
    assert m["auc"] == pytest.approx(auc)
    ap = (skm.average_precision_score(labels == 1, probs[:, 1]) if k == 2
          else np.mean([skm.average_precision_score(labels == i, probs[:, i]) for i in range(k)]))
    assert m["pr_auc"] == pytest.approx(ap)
    assert m["confusion_matrix"] == skm.confusion_matrix(labels, preds).tolist()


def test_auc_undefined_when_class_missing():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    m = classification_metrics(logits, np.array([0, 1]))
    assert m["auc"] is None and m["pr_auc"] is None and "absent" in m["auc_note"]
    assert m["accuracy"] == 1.0


def test_probabilities_accepted_as_is():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    m = classification_metrics(probs, np.array([0, 0, 1]))
    assert m["auc"] == pytest.approx(skm.roc_auc_score([0, 0, 1], probs[:, 1]))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_metrics_match_sklearn_with_ties_and_empty_classes(k):
    """The numpy metrics (core install, no scikit-learn) equal scikit-learn's on tied scores, a class that is
    never predicted, and weighted/precision/recall averages (zero_division=0)."""
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, 200)
    probs = np.round(rng.random((200, k)), 1) + 1e-9  # few distinct values: many ties
    probs[:, k - 1] = 0.0  # the last class is never predicted: precision undefined -> 0
    probs /= probs.sum(1, keepdims=True)
    preds = probs.argmax(1)
    m = classification_metrics(probs, labels)
    ids = list(range(k))
    for avg in ("macro", "micro", "weighted"):
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(labels, preds, labels=ids, average=avg, zero_division=0))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(labels, preds, average="macro", zero_division=0))
    assert m["recall_macro"] == pytest.approx(skm.recall_score(labels, preds, average="macro", zero_division=0))
    auc = (skm.roc_auc_score(labels, probs[:, 1]) if k == 2
           else skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=ids))
    assert m["auc"] == pytest.approx(auc)
    ap = (skm.average_precision_score(labels == 1, probs[:, 1]) if k == 2
          else np.mean([skm.average_precision_score(labels == i, probs[:, i]) for i in ids]))
    assert m["pr_auc"] == pytest.approx(ap)


def test_pr_auc_tracks_the_rare_class_where_roc_auc_does_not():
    """5 positives in 1,000: a ranking that puts 20 negatives above every positive keeps ROC-AUC near 1 while
    PR-AUC (average precision) falls to 5/25 = 0.2; ties count as one threshold, as in scikit-learn."""
    labels = np.zeros(1000, dtype=int)
    labels[:5] = 1
    score = np.zeros(1000)
    score[5:25] = 1.0  # 20 negatives ranked first
    score[:5] = 0.9
    probs = np.stack([1 - score / 2, score / 2], axis=1)
    m = classification_metrics(probs, labels)
    assert m["auc"] > 0.97
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(labels, score)) == pytest.approx(0.2)
    tied = np.full(1000, 0.5)  # one threshold: precision = prevalence at recall 1
    assert classification_metrics(np.stack([1 - tied, tied], 1), labels)["pr_auc"] == pytest.approx(0.005)
