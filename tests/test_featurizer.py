"""TfidfVectorsFeaturizer: the fast inference path equals scikit-learn's transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.nlu.featurizer import SparseFeatures, TfidfVectorsFeaturizer
from bot.nlu.interfaces import Message, Token
from bot.training.data import Example, TrainingData

TRAIN = [
    "查下尾号1234的余额",
    "我的卡丢了 快挂失",
    "你好 你好",
    "查余额 查余额 查余额",
    "app登不上",
]
PROBES = ["查下尾号5678的余额", "卡丢了", "完全没见过的话", "", "你好你好你好 app"]


def message(text: str) -> Message:
    m = Message(text, norm=text.lower())
    m.tokens = (
        [Token(w, 0, 0) for w in m.norm.split()]
        if " " in m.norm
        else [Token(ch, i, i + 1) for i, ch in enumerate(m.norm)]
    )
    return m


def trained(**config: object) -> TfidfVectorsFeaturizer:
    featurizer = TfidfVectorsFeaturizer(dict(config))
    data = TrainingData(examples=[Example(t, "x") for t in TRAIN])
    featurizer.train(data, [message(t) for t in TRAIN])
    return featurizer


def dense(features: SparseFeatures) -> np.ndarray:
    row = np.zeros(features.dim)
    row[features.indices] = features.values
    return row


@pytest.mark.parametrize(
    "config",
    [
        {"analyzer": "word"},
        {"analyzer": "word", "min_ngram": 2, "max_ngram": 3},
        {"analyzer": "char", "min_ngram": 1, "max_ngram": 3},
        {"analyzer": "char", "sublinear_tf": False},
    ],
)
def test_fast_path_equals_scikit_learn(config: dict[str, object]) -> None:
    featurizer = trained(**config)
    for text in PROBES:
        m = message(text)
        grams = featurizer.grams(m)
        expected = featurizer.vectorizer.transform([grams]).toarray()[0]
        np.testing.assert_allclose(dense(featurizer.vectorize(grams)), expected, atol=1e-12)


def test_process_appends_one_block_per_featurizer() -> None:
    word, char = trained(analyzer="word"), trained(analyzer="char", max_ngram=2)
    m = message("查下尾号5678的余额")
    word.process(m)
    char.process(m)
    assert len(m.features) == 2
    assert m.features[0].dim == len(word.vectorizer.vocabulary_)
    assert m.features[1].dim == len(char.vectorizer.vocabulary_)
    assert np.linalg.norm(m.features[1].values) == pytest.approx(1.0)


def test_digits_are_masked() -> None:
    featurizer = trained(analyzer="char", max_ngram=3)
    a = featurizer.vectorize(featurizer.grams(message("尾号1234")))
    b = featurizer.vectorize(featurizer.grams(message("尾号9876")))
    np.testing.assert_array_equal(dense(a), dense(b))
    assert not any(
        ch.isdigit() and ch != "0" for g in featurizer.vectorizer.vocabulary_ for ch in g
    )


def test_unknown_text_gives_an_empty_row() -> None:
    featurizer = trained(analyzer="word")
    features = featurizer.vectorize(["从来没有"])
    assert len(features.indices) == 0 and features.dim > 0


def test_persist_and_load(tmp_path: Path) -> None:
    featurizer = trained(analyzer="char", max_ngram=2)
    featurizer.persist(tmp_path)
    loaded = TfidfVectorsFeaturizer.load(tmp_path, featurizer.config)
    for text in PROBES:
        m = message(text)
        np.testing.assert_array_equal(
            dense(loaded.vectorize(loaded.grams(m))),
            dense(featurizer.vectorize(featurizer.grams(m))),
        )


def test_bad_analyzer_and_untrained_use_are_errors() -> None:
    with pytest.raises(ValueError, match="analyzer"):
        TfidfVectorsFeaturizer({"analyzer": "sentence"})
    with pytest.raises(RuntimeError, match="not trained"):
        TfidfVectorsFeaturizer({}).process(message("x"))
