"""The low-rank softmax classifier (bot/kb/lowrank.py) and its part in the entry classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from bot.kb.classifier import EntryClassifier
from bot.kb.lowrank import LowRankSoftmax
from bot.kb.text import TextAnalyzer

TEXTS = [
    "信用卡怎么还款",
    "信用卡还款方式",
    "信用卡自动还款",  # entry 0
    "信用卡额度怎么提高",
    "信用卡提额",
    "信用卡临时额度",  # entry 1
    "借记卡挂失",
    "银行卡丢了怎么办",  # entry 2
]
LABELS = np.asarray([0, 0, 0, 1, 1, 1, 2, 2])


def _clusters(seed: int = 0) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Three classes, each with its own 5 features; every row has 2 of its class's."""
    rng = np.random.default_rng(seed)
    rows, cols, labels = [], [], []
    for i in range(300):
        c = i % 3
        for f in rng.choice(5, 2, replace=False):
            rows.append(i)
            cols.append(5 * c + int(f))
        labels.append(c)
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(300, 15))
    return x, np.asarray(labels)


def test_learns_separable_classes_and_is_deterministic() -> None:
    x, y = _clusters()
    model = LowRankSoftmax.fit(x, y, 3, epochs=8)
    again = LowRankSoftmax.fit(x, y, 3, epochs=8)
    assert np.array_equal(model.embeddings, again.embeddings)
    for c in range(3):  # a feature combination never seen together still finds its class
        cols = np.asarray([5 * c, 5 * c + 4])
        probs = model.probabilities(cols, np.full(2, 1 / np.sqrt(2), np.float32))
        assert int(np.argmax(probs)) == c and probs[c] > 0.5
        assert abs(float(probs.sum()) - 1.0) < 1e-5


def test_warm_start_keeps_old_classes_and_adds_new_ones(tmp_path: Path) -> None:
    x, y = _clusters()
    model = LowRankSoftmax.fit(x, y, 3, epochs=8)
    # class 0 now is old class 2, class 1 is new, class 2 is old class 0
    warm = model.warm_start(np.asarray([2, -1, 0]), 3)
    assert np.array_equal(warm.out[:, 0], model.out[:, 2])
    assert not warm.out[:, 1].any() and warm.bias[1] == 0.0
    model.save(tmp_path)
    loaded = LowRankSoftmax.load(tmp_path)
    assert loaded is not None and np.array_equal(loaded.out, model.out)
    assert LowRankSoftmax.load(tmp_path / "missing") is None


def test_entry_classifier_mean_of_both_models_round_trips(tmp_path: Path) -> None:
    analyzer = TextAnalyzer()
    docs = [analyzer.analyse(t) for t in TEXTS]
    model = EntryClassifier.fit(docs, LABELS, 3)
    assert model.lowrank is not None and model.lowrank.n_classes == 3
    query = analyzer.analyse("信用卡提额")
    both, _ = model.predict(query)
    lowrank, model.lowrank = model.lowrank, None
    alone, _ = model.predict(query)
    model.lowrank = lowrank
    cols, values, _ = model.featurizer.one(query)
    probs = lowrank.probabilities(cols, values / np.linalg.norm(values))
    assert np.allclose(both, (alone + probs) / 2, atol=1e-6)
    assert int(np.argmax(both)) == 1 and both.min() >= 0.0 and both.max() <= 1.0 + 1e-6
    model.save(tmp_path)
    again = EntryClassifier.load(tmp_path)
    assert again.lowrank is not None
    assert np.allclose(again.predict(query)[0], both)
    # an incremental fit continues the low-rank model too
    warm = EntryClassifier.fit(docs, LABELS, 3, warm=(model, np.asarray([0, -1, 2])))
    assert warm.lowrank is not None and warm.lowrank.embeddings.shape == lowrank.embeddings.shape


def test_no_lowrank_model_without_paraphrases() -> None:
    analyzer = TextAnalyzer()
    docs = [analyzer.analyse(t) for t in ("信用卡怎么还款", "借记卡挂失")]
    model = EntryClassifier.fit(docs, np.asarray([0, 1]), 2)
    assert model.lowrank is None


def test_lowrank_probability_is_its_own_calibrator_feature() -> None:
    from bot.kb.calibration import FEATURES, feature_matrix

    ones = np.ones(3, np.float32)
    share = np.asarray([1.0, 0.5, 0.0], np.float32)
    lowrank = np.asarray([0.9, 0.1, 0.4], np.float32)
    x = feature_matrix(ones * 0.5, ones * 0.2, ones * 0.3, ones * 0.1, share, lowrank)
    assert np.allclose(x[:, FEATURES.index("lowrank")], lowrank * share)
    assert np.allclose(x[:, FEATURES.index("lowrank_gap")], (lowrank - 0.9) * share)
    without = feature_matrix(ones * 0.5, ones * 0.2, ones * 0.3, ones * 0.1, share)
    assert not without[:, FEATURES.index("lowrank")].any()
    # the rest, including the fixed prior mix, does not depend on the low-rank model
    rest = [i for i, f in enumerate(FEATURES) if not f.startswith("lowrank")]
    assert np.allclose(x[:, rest], without[:, rest])


def test_predict_parts_gives_both_models_scores() -> None:
    analyzer = TextAnalyzer()
    docs = [analyzer.analyse(t) for t in TEXTS]
    model = EntryClassifier.fit(docs, LABELS, 4)  # entry 3 has no training rows
    scores, probs, coverage = model.predict_parts(analyzer.analyse("借记卡挂失"))
    assert scores[3] == 0.0 and probs[3] == 0.0 and 0.0 < coverage <= 1.0
    assert abs(float(probs.sum()) - 1.0) < 1e-5 and int(np.argmax(probs)) == 2
    mean, _ = model.predict(analyzer.analyse("借记卡挂失"))
    assert np.allclose(mean, (scores + probs) / 2)


def test_a_rate_that_overflows_restarts_at_half_the_rate(monkeypatch: Any) -> None:
    """A step that overflows stops the run, and training starts again at half the rate: the
    model stays finite and still learns; a rate that never settles leaves a uniform model,
    never NaN."""
    from bot.kb import lowrank

    x, y = _clusters()
    noisy = np.random.default_rng(1).permutation(y)  # never separable: the steps go on
    xn = lowrank._normalise_rows(x)
    assert LowRankSoftmax._sgd(xn, noisy, 3, 8, None, 0, 1e30) is None  # overflow detected
    assert LowRankSoftmax._sgd(xn, noisy, 3, 8, None, 0, 0.3) is not None

    rates: list[float] = []
    sgd = LowRankSoftmax._sgd.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, *args: Any) -> LowRankSoftmax | None:
        rates.append(float(args[-1]))
        if len(rates) == 1:  # the first run overflows
            return None
        return sgd(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(LowRankSoftmax, "_sgd", classmethod(spy))
    model = LowRankSoftmax.fit(x, y, 3, epochs=8)
    assert rates == [lowrank.RATE, lowrank.RATE / 2]
    cols = np.asarray([0, 4])
    probs = model.probabilities(cols, np.full(2, 1 / np.sqrt(2), np.float32))
    assert np.isfinite(probs).all() and int(np.argmax(probs)) == 0

    monkeypatch.undo()
    monkeypatch.setattr(lowrank, "RATE", 1e30)
    stuck = LowRankSoftmax.fit(x, noisy, 3, epochs=8)
    probs = stuck.probabilities(cols, np.full(2, 1 / np.sqrt(2), np.float32))
    assert np.allclose(probs, 1 / 3)
