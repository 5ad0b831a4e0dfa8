"""Sentiment of a customer message (negative / neutral / positive) for the handoff triggers.

A lexicon plus a classifier, trained at ``bot train`` time on the project's labelled
sentiment data (``sentiment/train.yml``); nothing is downloaded.

- **Lexicon.** :data:`BASE_LEXICON` (general Chinese words) merged with the project's
  ``sentiment/lexicon.yml``: negative and positive words, negators (不/没/没有 … flip the
  next sentiment word: 不满意 → negative, 没让我失望 → not negative), prohibitives (别/不要:
  别骗我 stays negative, 别高兴太早 turns negative), intensifiers (太/非常/真 … weigh the
  next word 1.5×) and neutral phrases that only shadow a sentiment word (差不多, 麻烦你).
  The normalised text is matched greedily, longest entry first; punctuation and spaces end
  a negation's scope. Six features: negative, positive, negated positive, negated
  negative, ``!`` count, ``??``.
- **Classifier.** Character n-gram TF-IDF (binary tf, l2) of the normalised text, digits
  masked, plus the lexicon features, into a multinomial scikit-learn
  ``LogisticRegression`` (class weights balanced).

At run time the component reads ``Message.norm`` (the normaliser's output) and applies the
trained weights directly: per n-gram the idf² and idf × weight per class are precomputed,
so a message costs a few dictionary look-ups and a three-way softmax in pure Python
(scikit-learn's transform + predict_proba take ~1 ms per call). ``test_sentiment`` checks
both paths agree.

Without the data file the component warns and runs on the lexicon alone, with fixed
weights (:data:`LEXICON_ONLY_WEIGHTS`).

The parse result gets ``"sentiment": {"label", "score", "negative"}``: ``score`` is
P(positive) − P(negative) in [-1, 1], ``negative`` is P(negative).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from bot.errors import TrainingDataError
from bot.nlu.interfaces import Component, Message
from bot.nlu.normalizer import normalise
from bot.training.data import TrainingData

logger = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
MODEL_FILE = "sentiment.json"
FEATURES = ("negative", "positive", "negated_positive", "negated_negative", "exclaim", "question")

# Lexicon categories → kind codes of the compiled matcher.
_NEG, _POS, _NOT, _DONT, _INTENS, _SHADOW, _BOUNDARY = range(7)
CATEGORIES = {
    "negative": _NEG,
    "positive": _POS,
    "negators": _NOT,
    "prohibitives": _DONT,
    "intensifiers": _INTENS,
    "neutral": _SHADOW,
}
_BOUNDARIES = " ,.!?;:~、。…\n"
_DIGITS = re.compile(r"\d")

BASE_LEXICON: dict[str, tuple[str, ...]] = {
    "negative": (
        "垃圾", "破", "烂", "烂透", "差", "差劲", "糟糕", "糟心", "糟透", "气死", "气人",
        "气炸", "生气", "愤怒", "恼火", "火大", "来气", "烦", "烦死", "烦人", "讨厌", "失望",
        "寒心", "心寒", "无语", "郁闷", "崩溃", "受够", "受不了", "服了", "醉了", "心累",
        "倒霉", "坑", "坑人", "坑爹", "骗", "骗子", "骗人", "欺骗", "欺诈", "忽悠", "黑心",
        "抢钱", "离谱", "过分", "不合理", "莫名其妙", "恶劣", "敷衍", "推诿", "踢皮球",
        "拖拉", "不满", "投诉", "举报", "曝光", "起诉", "差评", "什么玩意", "什么鬼", "搞什么",
        "有病", "呵呵", "慢", "卡死", "折腾", "麻烦", "急死", "着急", "欺负", "没用", "白跑",
        "浪费", "耽误", "损失", "一塌糊涂", "要命", "可恶", "丢人", "憋屈", "无奈", "痛苦",
        "逼疯", "疯了", "无能", "恶心", "滚", "废物", "蠢", "答非所问", "一问三不知", "套话",
        "凭什么", "要你何用", "够了", "不好", "不太好", "不怎么好", "难用", "反感",
        "一肚子火", "报警", "谁负责", "什么意思", "故意", "爱答不理", "急", "晾", "后悔",
        "😡", "😤", "😠", "👎", "💢", "🙄", "😭", "😞", "🤬", "😒",
    ),
    "positive": (
        "谢谢", "感谢", "多谢", "谢了", "谢啦", "感激", "满意", "不错", "好评", "点赞", "赞",
        "棒", "很好", "真好", "挺好", "太好", "非常好", "好用", "好极了", "完美", "优秀", "专业",
        "耐心", "热情", "贴心", "周到", "细心", "用心", "靠谱", "给力", "厉害", "方便", "便捷",
        "及时", "高效", "顺利", "开心", "高兴", "放心", "安心", "喜欢", "惊喜", "感动", "辛苦",
        "信任", "信赖", "划算", "实用", "搞定", "帮大忙", "五星", "满分", "有帮助", "一流",
        "愉快", "温柔", "负责", "推荐给", "幸亏", "幸好", "越来越好", "变好", "踏实",
        "超出预期", "thank", "thanks",
        "👍", "😊", "😀", "😄", "🙏", "❤", "💯", "👏", "🌹", "😁", "🥰",
    ),
    "negators": (
        "不", "没", "没有", "无", "未", "不是", "并不", "并没有", "从不", "从没", "毫不",
        "绝不", "不太", "不怎么", "不够", "一点都不", "一点也不", "不算",
    ),
    "prohibitives": ("别", "不要", "别再"),
    "intensifiers": (
        "太", "非常", "真", "真是", "真的", "很", "特别", "超", "超级", "极", "极其", "十分",
        "相当", "好", "巨", "实在", "简直", "根本", "完全", "越来越", "最", "更", "挺", "蛮",
        "这么", "那么",
    ),
    "neutral": (
        "差不多", "出差", "差额", "差价", "时差", "差点", "慢慢", "麻烦你", "麻烦您", "麻烦帮",
        "没用过", "方便的话", "破损", "突破", "不客气", "不好意思", "紧急", "负责人",
    ),
}

# Lexicon-only mode (no training data): weights per feature for (negative, neutral, positive).
LEXICON_ONLY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "negative": (2.0, 0.0, -1.0),
    "positive": (-1.0, 0.0, 2.0),
    "negated_positive": (2.0, 0.0, -1.0),
    "negated_negative": (-0.5, 0.0, 0.5),
    "exclaim": (0.5, 0.0, 0.0),
    "question": (0.7, 0.0, 0.0),
}
LEXICON_ONLY_INTERCEPT = (-1.2, 0.0, -1.2)

# Options the per-message scoring depends on: saved with the weights.
_SCORING_OPTIONS = ("min_ngram", "max_ngram", "negation_window", "max_chars")

_NEUTRAL_RESULT: dict[str, Any] = {"label": "neutral", "score": 0.0, "negative": 0.0}


# -- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentimentExample:
    text: str
    label: str
    line: int = 0


def read_sentiment_file(path: Path) -> list[SentimentExample]:
    """Examples of a ``sentiment:`` YAML file (``- label: negative`` + ``examples: |``)."""
    try:
        top = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: YAML syntax error: {exc}") from exc
    items = top.value if isinstance(top, yaml.MappingNode) else None
    section = next((v for k, v in items or [] if k.value == "sentiment"), None)
    if not isinstance(section, yaml.SequenceNode):
        raise TrainingDataError(f"{path}: expected a mapping with a 'sentiment:' list at the top")
    examples: list[SentimentExample] = []
    for item in section.value:
        fields = {k.value: v for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        where = f"{path}:{item.start_mark.line + 1}"
        label_node, block = fields.get("label"), fields.get("examples")
        label = getattr(label_node, "value", None)
        if label not in LABELS:
            raise TrainingDataError(f"{where}: 'label' must be one of {', '.join(LABELS)}")
        if not isinstance(block, yaml.ScalarNode):
            raise TrainingDataError(f"{where}: 'examples' must be a '|' block of '- text' lines")
        first_line = block.start_mark.line + (1 if block.style == "|" else 0)
        for offset, raw in enumerate(str(block.value).splitlines()):
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("- ") or not line[2:].strip():
                raise TrainingDataError(
                    f"{path}:{first_line + offset + 1}: expected '- text', got {line!r}"
                )
            examples.append(SentimentExample(line[2:].strip(), str(label), first_line + offset + 1))
    return examples


def read_lexicon_file(path: Path) -> dict[str, list[str]]:
    """The categories of a lexicon YAML file (each a list of words)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: YAML syntax error: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) - set(CATEGORIES):
        raise TrainingDataError(
            f"{path}: expected a mapping of {', '.join(CATEGORIES)} to lists of words"
        )
    lexicon: dict[str, list[str]] = {}
    for category, words in raw.items():
        if words is None:
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise TrainingDataError(f"{path}: '{category}' must be a list of words")
        lexicon[category] = words
    return lexicon


def merge_lexicons(*lexicons: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """One lexicon, words normalised like message text; a later category wins for a word."""
    owner: dict[str, str] = {}
    for lexicon in lexicons:
        for category in CATEGORIES:
            for word in lexicon.get(category, ()):
                norm = normalise(word)[0].strip()
                if norm:
                    owner[norm] = category
    return {c: sorted(w for w, cat in owner.items() if cat == c) for c in CATEGORIES}


# -- features -----------------------------------------------------------------------------


class Lexicon:
    """A compiled lexicon: greedy longest-match scan giving the six lexicon features."""

    def __init__(self, words: Mapping[str, Sequence[str]], negation_window: int = 2) -> None:
        self.words = {c: list(words.get(c, ())) for c in CATEGORIES}
        self.window = negation_window
        self._kinds: dict[str, int] = {ch: _BOUNDARY for ch in _BOUNDARIES}
        for category, kind in CATEGORIES.items():
            for word in self.words[category]:
                self._kinds[word] = kind
        self._longest: dict[str, int] = {}
        for entry in self._kinds:
            self._longest[entry[0]] = max(self._longest.get(entry[0], 0), len(entry))

    def features(self, text: str) -> tuple[float, float, float, float, float, float]:
        """``FEATURES`` of a normalised text."""
        kinds, longest, window = self._kinds, self._longest, self.window
        neg = pos = neg_pos = neg_neg = 0.0
        flip = dont = False
        negator_end = intensifier_end = -100
        i, n = 0, len(text)
        while i < n:
            most = longest.get(text[i])
            if most is None:
                i += 1
                continue
            kind = -1
            length = min(most, n - i)
            while length:
                kind = kinds.get(text[i : i + length], -1)
                if kind >= 0:
                    break
                length -= 1
            if kind < 0:
                i += 1
                continue
            if kind <= _POS:
                weight = 1.5 if i - intensifier_end <= window else 1.0
                negated = i - negator_end <= window
                if kind == _POS:
                    if negated and (flip or dont):
                        neg_pos += weight
                    else:
                        pos += weight
                elif negated and flip and not dont:
                    neg_neg += weight
                else:
                    neg += weight
                flip = dont = False
                negator_end = intensifier_end = -100
            elif kind == _NOT:
                flip = not flip if i - negator_end <= window else True
                negator_end = i + length
            elif kind == _DONT:
                dont, negator_end = True, i + length
            elif kind == _INTENS:
                intensifier_end = i + length
            elif kind == _BOUNDARY:
                flip = dont = False
                negator_end = intensifier_end = -100
            i += length
        return (
            min(neg, 3.0),
            min(pos, 3.0),
            min(neg_pos, 3.0),
            min(neg_neg, 3.0),
            min(text.count("!"), 3) / 2,
            1.0 if "??" in text else 0.0,
        )


def char_grams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams of a normalised text, digits masked (as the intent featurizer)."""
    text = _DIGITS.sub("0", text)
    return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]


def _identity(grams: list[str]) -> list[str]:
    return grams


# -- the component ------------------------------------------------------------------------


class SentimentAnalyzer(Component):
    name = "SentimentAnalyzer"
    defaults: ClassVar[dict[str, Any]] = {
        "data_path": "sentiment/train.yml",  # labelled examples (relative to the project)
        "lexicon_path": "sentiment/lexicon.yml",  # words added to BASE_LEXICON (optional)
        "min_ngram": 1,
        "max_ngram": 2,
        "min_df": 1,  # n-grams in fewer training examples are left out
        "C": 30.0,
        "class_weight": "balanced",
        "max_iter": 2000,
        "lexicon_weight": 0.25,  # scale of the lexicon features against the TF-IDF row
        "negation_window": 2,  # characters allowed between a negator and its word
        "max_chars": 2000,  # only the start of a longer text is read
        "random_seed": 42,
    }

    def __init__(self, config: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.state: dict[str, Any] | None = None
        self.vectorizer: Any = None  # scikit-learn objects: only right after train()
        self.model: Any = None
        self.lexicon = Lexicon({}, int(self.config["negation_window"]))
        self._grams: dict[str, tuple[float, float, float, float]] = {}
        self._lexicon_weights: list[tuple[float, float, float]] = []
        self._intercept = (0.0, 0.0, 0.0)
        self._ngrams = range(int(self.config["min_ngram"]), int(self.config["max_ngram"]) + 1)
        if state is not None:
            self._prepare(state)

    def _prepare(self, state: dict[str, Any]) -> None:
        """Lay the weights out for the per-message scoring (see the module docstring)."""
        self.state = state
        self.lexicon = Lexicon(state["lexicon"], int(self.config["negation_window"]))
        coef: list[list[float]] = state["coef"]  # classes × (vocabulary + lexicon features)
        idf: list[float] = state["idf"]
        self._grams = {
            gram: (w * w, w * coef[0][j], w * coef[1][j], w * coef[2][j])
            for j, (gram, w) in enumerate(zip(state["vocabulary"], idf, strict=True))
        }
        width = len(idf)
        self._lexicon_weights = [
            (coef[0][width + f], coef[1][width + f], coef[2][width + f])
            for f in range(len(FEATURES))
        ]
        b = state["intercept"]
        self._intercept = (float(b[0]), float(b[1]), float(b[2]))

    # -- training -------------------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        value = self.config.get(key)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else Path(self.config.get("project_root", ".")) / path

    def _lexicon_words(self) -> dict[str, list[str]]:
        path = self._path("lexicon_path")
        extra = read_lexicon_file(path) if path is not None and path.is_file() else {}
        return merge_lexicons(BASE_LEXICON, extra)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        words = self._lexicon_words()
        path = self._path("data_path")
        if path is not None and path.is_file():
            self.fit(read_sentiment_file(path), words, source=str(self.config["data_path"]))
        else:
            logger.warning(
                "SentimentAnalyzer: no sentiment data (data_path %s); using the lexicon alone",
                path,
            )
            self._prepare(self.lexicon_only_state(words))
        for message in messages:
            self.process(message)

    @staticmethod
    def lexicon_only_state(words: dict[str, list[str]]) -> dict[str, Any]:
        """Model state scoring the lexicon features with :data:`LEXICON_ONLY_WEIGHTS`."""
        coef = [[LEXICON_ONLY_WEIGHTS[f][c] for f in FEATURES] for c in range(len(LABELS))]
        return {"labels": list(LABELS), "vocabulary": [], "idf": [], "coef": coef,
                "intercept": list(LEXICON_ONLY_INTERCEPT), "lexicon": words,
                "facts": {"mode": "lexicon-only"}}

    def fit(
        self,
        examples: Sequence[SentimentExample],
        words: dict[str, list[str]] | None = None,
        source: str | None = None,
    ) -> None:
        """Train on labelled examples (texts are normalised here, as the pipeline does)."""
        import numpy as np
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        words = words if words is not None else merge_lexicons(BASE_LEXICON)
        self.lexicon = Lexicon(words, int(self.config["negation_window"]))
        texts, labels = self._dataset(examples, source)
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        self.vectorizer = TfidfVectorizer(
            analyzer=_identity, binary=True, lowercase=False, dtype=np.float64,
            min_df=int(self.config["min_df"]),
        )
        tfidf = self.vectorizer.fit_transform([char_grams(t, low, high) for t in texts])
        scale = float(self.config["lexicon_weight"])
        lexical = csr_matrix(np.array([self.lexicon.features(t) for t in texts]) * scale)
        self.model = LogisticRegression(
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            random_state=int(self.config["random_seed"]),
        )
        # One BLAS thread: on this small problem more threads only contend (20× slower on
        # a busy 2-core machine).
        with threadpool_limits(1):
            self.model.fit(hstack([tfidf, lexical]).tocsr(), labels)
        if list(self.model.classes_) != list(LABELS):  # pragma: no cover - checked above
            raise TrainingDataError(f"SentimentAnalyzer: labels {self.model.classes_}")
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        coef = np.array(self.model.coef_, dtype=np.float64)
        coef[:, len(vocabulary) :] *= scale  # saved for unscaled lexicon features
        counts = {label: labels.count(label) for label in LABELS}
        self._prepare({
            "labels": list(LABELS),
            "vocabulary": vocabulary,
            "idf": [float(v) for v in self.vectorizer.idf_],
            "coef": coef.tolist(),
            "intercept": np.asarray(self.model.intercept_, dtype=np.float64).tolist(),
            "lexicon": words,
            "facts": {"mode": "trained", "source": source, "examples": counts},
        })

    @staticmethod
    def _dataset(
        examples: Sequence[SentimentExample], source: str | None
    ) -> tuple[list[str], list[str]]:
        where = source or "the sentiment data"
        seen: dict[str, SentimentExample] = {}
        for example in examples:
            norm = normalise(example.text)[0].strip()
            if not norm:
                raise TrainingDataError(f"{where}:{example.line}: empty after normalisation")
            other = seen.get(norm)
            if other is not None and other.label != example.label:
                raise TrainingDataError(
                    f"{where}:{example.line}: {example.text!r} is labelled {example.label} "
                    f"here and {other.label} on line {other.line}"
                )
            seen.setdefault(norm, example)
        missing = [label for label in LABELS if label not in {e.label for e in seen.values()}]
        if missing:
            raise TrainingDataError(f"{where}: no examples labelled {', '.join(missing)}")
        return list(seen), [e.label for e in seen.values()]

    # -- inference ------------------------------------------------------------------------

    def probabilities(self, text: str) -> tuple[float, float, float]:
        """P(negative), P(neutral), P(positive) of a normalised text."""
        masked = _DIGITS.sub("0", text) if _DIGITS.search(text) else text
        size = len(masked)
        # dict, not set: a fixed summation order gives the same floats in every process
        present = dict.fromkeys(
            [masked[i : i + n] for n in self._ngrams for i in range(size - n + 1)]
        )
        s2 = a = b = c = 0.0
        for entry in map(self._grams.get, present):
            if entry is not None:
                s2 += entry[0]
                a += entry[1]
                b += entry[2]
                c += entry[3]
        z0, z1, z2 = self._intercept
        if s2 > 0:
            norm = math.sqrt(s2)
            z0, z1, z2 = z0 + a / norm, z1 + b / norm, z2 + c / norm
        for value, (w0, w1, w2) in zip(
            self.lexicon.features(text), self._lexicon_weights, strict=True
        ):
            if value:
                z0, z1, z2 = z0 + value * w0, z1 + value * w1, z2 + value * w2
        top = max(z0, z1, z2)
        e0, e1, e2 = math.exp(z0 - top), math.exp(z1 - top), math.exp(z2 - top)
        total = e0 + e1 + e2
        return e0 / total, e1 / total, e2 / total

    def analyse_norm(self, norm: str) -> dict[str, Any]:
        """The ``sentiment`` entry of the parse result for a normalised text."""
        if self.state is None:
            raise RuntimeError("SentimentAnalyzer is not trained")
        norm = norm[: int(self.config["max_chars"])]
        if not norm.strip():
            return dict(_NEUTRAL_RESULT)
        p = self.probabilities(norm)
        best = 0 if p[0] >= p[1] and p[0] >= p[2] else (1 if p[1] >= p[2] else 2)
        return {
            "label": LABELS[best],
            "score": round(p[2] - p[0], 4),
            "negative": round(p[0], 4),
        }

    def analyse(self, text: str) -> dict[str, Any]:
        """The ``sentiment`` entry for raw text (normalised with the default options)."""
        return self.analyse_norm(normalise(text[: int(self.config["max_chars"])])[0])

    def sentiment(self, message: Message) -> dict[str, Any]:
        """The ``sentiment`` entry for a message the normaliser has processed."""
        if message.norm or not message.text:
            return self.analyse_norm(message.norm)
        return self.analyse(message.text)  # a pipeline without ChineseTextNormalizer

    def process(self, message: Message) -> None:
        result = self.sentiment(message)
        # Extra parse-result keys live in Message.extras (bot/nlu/interfaces.py).
        extras = getattr(message, "extras", None)
        if isinstance(extras, dict):
            extras["sentiment"] = result

    # -- persistence ----------------------------------------------------------------------

    def persist(self, directory: Path) -> None:
        if self.state is None:
            raise RuntimeError("SentimentAnalyzer is not trained")
        settings = {key: self.config[key] for key in _SCORING_OPTIONS}
        (directory / MODEL_FILE).write_text(
            json.dumps({**self.state, "settings": settings}, ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        state = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
        return cls({**state.get("settings", {}), **config}, state)


# -- evaluation ---------------------------------------------------------------------------


@dataclass
class SentimentEvaluation:
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    negative: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        hits = sum(g == p for g, p in zip(self.gold, self.predicted, strict=True))
        return hits / len(self.gold) if self.gold else 0.0

    def per_label(self) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 and support of every label."""
        report: dict[str, dict[str, float]] = {}
        pairs = list(zip(self.gold, self.predicted, strict=True))
        for label in LABELS:
            tp = sum(g == p == label for g, p in pairs)
            predicted = sum(p == label for _, p in pairs)
            support = sum(g == label for g, _ in pairs)
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            report[label] = {"precision": precision, "recall": recall, "f1": f1,
                             "support": support}
        return report

    @property
    def macro_f1(self) -> float:
        report = self.per_label()
        return sum(r["f1"] for r in report.values()) / len(report)

    def confusion(self) -> dict[str, dict[str, int]]:
        """``confusion[gold][predicted]`` counts."""
        table = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
        for g, p in zip(self.gold, self.predicted, strict=True):
            table[g][p] += 1
        return table

    def errors(self) -> list[dict[str, Any]]:
        return [
            {"text": t, "gold": g, "predicted": p, "negative": n}
            for t, g, p, n in zip(self.texts, self.gold, self.predicted, self.negative,
                                  strict=True)
            if g != p
        ]

    def summary(self) -> dict[str, Any]:
        report = self.per_label()
        return {
            "n": len(self.gold),
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "negative_precision": round(report["negative"]["precision"], 4),
            "negative_recall": round(report["negative"]["recall"], 4),
            "per_label": {k: {m: round(v, 4) for m, v in r.items()} for k, r in report.items()},
            "confusion": self.confusion(),
        }


def _sentiment_function(model: Any) -> Callable[[str], dict[str, Any]]:
    """``text → sentiment dict`` for a component, a pipeline, a loaded model or a path."""
    if isinstance(model, str | Path):
        model = _load(Path(model))
    if isinstance(model, SentimentAnalyzer):
        return model.analyse
    pipeline = getattr(model, "nlu", model)  # a LoadedModel → its NLUPipeline
    components: list[Component] = list(getattr(pipeline, "components", None) or [])
    index = next(
        (i for i, c in enumerate(components) if isinstance(c, SentimentAnalyzer)), None
    )
    if index is None:
        raise ValueError(f"no SentimentAnalyzer in {model!r}")
    analyser = components[index]
    assert isinstance(analyser, SentimentAnalyzer)
    # Only the normaliser matters to the analyser (it reads Message.norm).
    before = [c for c in components[:index] if c.name == "ChineseTextNormalizer"]

    def run(text: str) -> dict[str, Any]:
        message = Message(text)
        for component in before:
            component.process(message)
        return analyser.sentiment(message)

    return run


def _load(path: Path) -> Any:
    """A model archive, an unpacked model, its ``nlu/`` folder or a component folder."""
    if path.is_file():
        from bot.model import load_model

        return load_model(path)
    from bot.nlu.pipeline import NLUPipeline

    for candidate in (path, path / "nlu"):
        if (candidate / "pipeline.json").is_file():
            return NLUPipeline.load(candidate)
    if (path / MODEL_FILE).is_file():
        return SentimentAnalyzer.load(path, {})
    raise FileNotFoundError(f"no model, NLU pipeline or {MODEL_FILE} at {path}")


def evaluate(
    model: Any, examples: Iterable[SentimentExample | tuple[str, str]]
) -> SentimentEvaluation:
    """Score ``model`` on ``examples``.

    ``model``: a :class:`SentimentAnalyzer`, an ``NLUPipeline``, a ``LoadedModel``, or a
    path to a model archive, an unpacked model, its ``nlu/`` folder or the component folder.
    """
    predict = _sentiment_function(model)
    result = SentimentEvaluation()
    for example in examples:
        text, label = (
            (example.text, example.label) if isinstance(example, SentimentExample) else example
        )
        sentiment = predict(text)
        result.texts.append(text)
        result.gold.append(label)
        result.predicted.append(sentiment["label"])
        result.negative.append(float(sentiment["negative"]))
    return result
