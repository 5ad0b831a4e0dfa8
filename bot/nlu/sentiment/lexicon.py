"""The sentiment lexicon: :data:`BASE_LEXICON` (general Chinese words, by category), merged
with a project's words, and :class:`Lexicon`, the compiled matcher giving the six lexicon
:data:`FEATURES` of a normalised text (negators, prohibitives and intensifiers as described
in :mod:`bot.nlu.sentiment.analyzer`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bot.nlu.normalizer import normalise

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

BASE_LEXICON: dict[str, tuple[str, ...]] = {
    "negative": (
        "垃圾",
        "破",
        "烂",
        "烂透",
        "差",
        "差劲",
        "糟糕",
        "糟心",
        "糟透",
        "气死",
        "气人",
        "气炸",
        "生气",
        "愤怒",
        "恼火",
        "火大",
        "来气",
        "烦",
        "烦死",
        "烦人",
        "讨厌",
        "失望",
        "寒心",
        "心寒",
        "无语",
        "郁闷",
        "崩溃",
        "受够",
        "受不了",
        "服了",
        "醉了",
        "心累",
        "倒霉",
        "坑",
        "坑人",
        "坑爹",
        "骗",
        "骗子",
        "骗人",
        "欺骗",
        "欺诈",
        "忽悠",
        "黑心",
        "抢钱",
        "离谱",
        "过分",
        "不合理",
        "莫名其妙",
        "恶劣",
        "敷衍",
        "推诿",
        "踢皮球",
        "拖拉",
        "不满",
        "投诉",
        "举报",
        "曝光",
        "起诉",
        "差评",
        "什么玩意",
        "什么鬼",
        "搞什么",
        "有病",
        "呵呵",
        "慢",
        "卡死",
        "折腾",
        "麻烦",
        "急死",
        "着急",
        "欺负",
        "没用",
        "白跑",
        "浪费",
        "耽误",
        "损失",
        "一塌糊涂",
        "要命",
        "可恶",
        "丢人",
        "憋屈",
        "无奈",
        "痛苦",
        "逼疯",
        "疯了",
        "无能",
        "恶心",
        "滚",
        "废物",
        "蠢",
        "答非所问",
        "一问三不知",
        "套话",
        "凭什么",
        "要你何用",
        "够了",
        "不好",
        "不太好",
        "不怎么好",
        "难用",
        "反感",
        "一肚子火",
        "报警",
        "谁负责",
        "什么意思",
        "故意",
        "爱答不理",
        "急",
        "晾",
        "后悔",
        "😡",
        "😤",
        "😠",
        "👎",
        "💢",
        "🙄",
        "😭",
        "😞",
        "🤬",
        "😒",
    ),
    "positive": (
        "谢谢",
        "感谢",
        "多谢",
        "谢了",
        "谢啦",
        "感激",
        "满意",
        "不错",
        "好评",
        "点赞",
        "赞",
        "棒",
        "很好",
        "真好",
        "挺好",
        "太好",
        "非常好",
        "好用",
        "好极了",
        "完美",
        "优秀",
        "专业",
        "耐心",
        "热情",
        "贴心",
        "周到",
        "细心",
        "用心",
        "靠谱",
        "给力",
        "厉害",
        "方便",
        "便捷",
        "及时",
        "高效",
        "顺利",
        "开心",
        "高兴",
        "放心",
        "安心",
        "喜欢",
        "惊喜",
        "感动",
        "辛苦",
        "信任",
        "信赖",
        "划算",
        "实用",
        "搞定",
        "帮大忙",
        "五星",
        "满分",
        "有帮助",
        "一流",
        "愉快",
        "温柔",
        "负责",
        "推荐给",
        "幸亏",
        "幸好",
        "越来越好",
        "变好",
        "踏实",
        "超出预期",
        "thank",
        "thanks",
        "👍",
        "😊",
        "😀",
        "😄",
        "🙏",
        "❤",
        "💯",
        "👏",
        "🌹",
        "😁",
        "🥰",
    ),
    "negators": (
        "不",
        "没",
        "没有",
        "无",
        "未",
        "不是",
        "并不",
        "并没有",
        "从不",
        "从没",
        "毫不",
        "绝不",
        "不太",
        "不怎么",
        "不够",
        "一点都不",
        "一点也不",
        "不算",
    ),
    "prohibitives": ("别", "不要", "别再"),
    "intensifiers": (
        "太",
        "非常",
        "真",
        "真是",
        "真的",
        "很",
        "特别",
        "超",
        "超级",
        "极",
        "极其",
        "十分",
        "相当",
        "好",
        "巨",
        "实在",
        "简直",
        "根本",
        "完全",
        "越来越",
        "最",
        "更",
        "挺",
        "蛮",
        "这么",
        "那么",
    ),
    "neutral": (
        "差不多",
        "出差",
        "差额",
        "差价",
        "时差",
        "差点",
        "慢慢",
        "麻烦你",
        "麻烦您",
        "麻烦帮",
        "没用过",
        "方便的话",
        "破损",
        "突破",
        "不客气",
        "不好意思",
        "紧急",
        "负责人",
    ),
}


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


# -- the matcher ----------------------------------------------------------------------


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
