"""Convert public Chinese banking FAQ data into KB sources + held-out queries (evaluation only).

Run: ``.venv/bin/python bench/kb_public_data.py [--repo GIT_DIR] [--out /work/eval_data]``

The data is never committed: this script reads it from a local bare git copy of the public
repository ``qiu997018209/TensorFlow`` (pinned commit below) and writes, for each set,

    OUT/<set>/<variant>/sources/kb.yml   our YAML source format (version "1", entries:)
    OUT/<set>/<variant>/queries.tsv      query<TAB>topic_id (topic_id = the expected entry id)
    OUT/<set>/<variant>/stats.json       counts

Sets (see /work/eval_data/README.md for the provenance):

* ``jining`` — 济宁银行 (Jining Bank) knowledge base export: 979 standard questions with a
  category (类别), answers per channel and ≈ 16,000 extended questions (扩展问题, real
  paraphrases, not generated). The repository's own held-out split (数据预处理/test.txt,
  1,746 questions, none of them in train.txt) gives the queries.
  ``supervised``: every entry has its standard question, the extended questions that are not
  queries as similar_questions, and the answer (WeChat channel text, else web, else app).
  ``zeroshot``: the same entries and queries, standard question and answer only.
* ``unionpay`` — 中国银联 (UnionPay) customer-service FAQ: 745 standard questions (label) with
  a real answer and a subject, and ≈ 4,000 user questions labelled with their standard question.
  ``zeroshot``: one entry per standard question (no similar_questions) with its answer; every
  other distinct user question is a query. ``supervised``: for each standard question with at
  least 2 user questions, 30 % of them (at least 1, never all) are held out as queries and the
  rest become similar_questions (seeded, so the split is reproducible).

Reading 知识管理.xls needs ``xlrd`` (not a project dependency): ``pip install --target
/work/eval_data/.pylib xlrd``; that folder is added to ``sys.path`` when it exists.
Deterministic: same input, same output bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.kb.sources import KBEntry, dump_yaml_entries, question_key  # noqa: E402

REPO = "qiu997018209/TensorFlow"
COMMIT = "910ed1b72b84ce3cf3641b9921fce290e4d35a89"
DEFAULT_GIT_DIR = Path("/work/.mirror/qiu997018209+TensorFlow/repo")
DEFAULT_OUT = Path("/work/eval_data")
PYLIB = DEFAULT_OUT / ".pylib"

JINING_XLS = "08.济宁银行人机对话/银行业数据/知识管理.xls"
JINING_TEST = "08.济宁银行人机对话/数据预处理/test.txt"
JINING_TRAIN = "08.济宁银行人机对话/数据预处理/train.txt"
UNIONPAY_TXT = "03.银联人机对话/module2_CNN_问题直接预测标签_准确率0.72/data/data.txt"
CHANNEL_PREFERENCE = ("微信", "网上银行", "手机银行")
_SPACE = re.compile(r"[\s\ufeff\u200b]+")


def git_show(git_dir: Path, path: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{COMMIT}:{path}"],
        check=True,
        capture_output=True,
    ).stdout


def clean(text: object) -> str:
    """One line of text: tabs, newlines and repeated spaces become one space."""
    return _SPACE.sub(" ", str(text)).strip()


def clean_answer(text: object) -> str:
    lines = [clean(line) for line in str(text).replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def write_set(
    out: Path, entries: list[KBEntry], queries: list[tuple[str, str]], info: dict[str, object]
) -> dict[str, object]:
    ids = {e.id for e in entries}
    variants: dict[str, str] = {}
    for entry in entries:
        for text in entry.variants():
            variants[question_key(text)] = entry.id
    for query, expected in queries:  # the guarantees the evaluation relies on
        assert expected in ids, expected
        assert question_key(query) not in variants, query
        assert "\t" not in query and "\n" not in query
    (out / "sources").mkdir(parents=True, exist_ok=True)
    (out / "sources" / "kb.yml").write_text(dump_yaml_entries(entries), encoding="utf-8")
    lines = ["query\ttopic_id"] + [f"{q}\t{t}" for q, t in queries]
    (out / "queries.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = {
        **info,
        "entries": len(entries),
        "similar_questions": sum(len(e.similar_questions) for e in entries),
        "mean_similar_per_entry": round(
            sum(len(e.similar_questions) for e in entries) / max(1, len(entries)), 2
        ),
        "queries": len(queries),
        "entries_with_queries": len({t for _, t in queries}),
        "source": {"repo": REPO, "commit": COMMIT},
    }
    (out / "stats.json").write_text(
        json.dumps(stats, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return stats


# --------------------------------------------------------------------------- Jining Bank


def jining(git_dir: Path, out: Path) -> list[dict[str, object]]:
    if PYLIB.is_dir():
        sys.path.insert(0, str(PYLIB))
    try:
        import xlrd  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise SystemExit(
            f"reading {JINING_XLS} needs xlrd: pip install --target {PYLIB} xlrd"
        ) from None
    book = xlrd.open_workbook(file_contents=git_show(git_dir, JINING_XLS))
    related = book.sheet_by_name("关联问题")  # 领域, 类别, 问题, 扩展问题
    answers_sheet = book.sheet_by_name("问题答案")  # 领域, 类别, 渠道, 问题, 答案

    order: OrderedDict[str, None] = OrderedDict()
    category: dict[str, str] = {}
    answers: dict[str, dict[str, str]] = defaultdict(dict)
    for r in range(1, answers_sheet.nrows):
        _domain, cat, channel, question, answer = answers_sheet.row_values(r)[:5]
        question = clean(question)
        order.setdefault(question, None)
        category.setdefault(question, clean(cat))
        if clean_answer(answer):
            answers[question].setdefault(clean(channel), clean_answer(answer))
    extended: dict[str, list[str]] = defaultdict(list)
    for r in range(1, related.nrows):
        _domain, cat, question, ext = related.row_values(r)[:4]
        question = clean(question)
        order.setdefault(question, None)
        category.setdefault(question, clean(cat))
        if clean(ext):
            extended[question].append(clean(ext))

    ids = {q: f"jn_{i:04d}" for i, q in enumerate(order, 1)}
    owner: dict[str, str] = {}  # question key → standard question
    for question in order:
        owner.setdefault(question_key(question), question)
        for ext in extended[question]:
            owner.setdefault(question_key(ext), question)

    def read_tsv(path: str) -> list[str]:
        rows = git_show(git_dir, path).decode("utf-8-sig").splitlines()
        return [clean(row.split("\t")[0]) for row in rows if row.strip()]

    test_keys: set[str] = set()
    queries: list[tuple[str, str]] = []
    dropped: Counter[str] = Counter()
    for text in read_tsv(JINING_TEST):
        key = question_key(text)
        question = owner.get(key)
        if question is None:
            dropped["not in the knowledge base export"] += 1
        elif key == question_key(question):
            dropped["is the standard question"] += 1
        elif key in test_keys:
            dropped["repeated"] += 1
        else:
            test_keys.add(key)
            queries.append((text, ids[question]))
    train_keys = {question_key(t) for t in read_tsv(JINING_TRAIN)}
    assert not (train_keys & test_keys), "the repository's train and test splits overlap"

    def answer_of(question: str) -> str:
        by_channel = answers.get(question, {})
        for channel in CHANNEL_PREFERENCE:
            if by_channel.get(channel):
                return by_channel[channel]
        return next(iter(by_channel.values()), "") or question  # never empty: see README

    supervised: list[KBEntry] = []
    zeroshot: list[KBEntry] = []
    for question in order:
        seen = {question_key(question)}
        similar: list[str] = []
        for ext in extended[question]:
            key = question_key(ext)
            if key and key not in seen and key not in test_keys and owner.get(key) == question:
                seen.add(key)
                similar.append(ext)
        entry = KBEntry(
            id=ids[question],
            category=category.get(question) or "其他",
            question=question,
            answer=answer_of(question),
            similar_questions=tuple(similar),
        )
        supervised.append(entry)
        zeroshot.append(
            KBEntry(id=entry.id, category=entry.category, question=question, answer=entry.answer)
        )
    info: dict[str, object] = {
        "set": "jining",
        "paths": [JINING_XLS, JINING_TEST, JINING_TRAIN],
        "dropped_queries": dict(dropped),
        "entries_without_answer_text": sum(1 for q in order if not answers.get(q)),
    }
    return [
        write_set(
            out / "jining" / "supervised", supervised, queries, {**info, "variant": "supervised"}
        ),
        write_set(out / "jining" / "zeroshot", zeroshot, queries, {**info, "variant": "zeroshot"}),
    ]


# --------------------------------------------------------------------------- UnionPay


def _unionpay_records(git_dir: Path) -> list[dict[str, str]]:
    text = git_show(git_dir, UNIONPAY_TXT).decode("utf-8-sig")
    records = []
    for body in re.findall(r"entry \{(.*?)\n\}", text, re.S):
        record: dict[str, str] = {}
        for line in body.strip().split("\n"):
            key, _, value = line.strip().partition(":")
            record[key.strip()] = value
        records.append(record)
    return records


@dataclass
class _Label:
    """One UnionPay standard question and what the records say about it."""

    label: str
    subjects: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    questions: list[str] = field(default_factory=list)

    def subject(self) -> str:
        name = self.subjects.most_common(1)[0][0]
        name = re.sub(r"^银联[一二]期_", "", name)
        return re.sub(r"_(FAQ|Tree|Line)$", "", name) or "银联"


def unionpay(
    git_dir: Path, out: Path, holdout: float = 0.3, seed: int = 0
) -> list[dict[str, object]]:
    records = _unionpay_records(git_dir)
    labels: dict[int, _Label] = {}
    for rec in records:
        item = labels.setdefault(int(rec["label ID"]), _Label(clean(rec["label"])))
        item.subjects[clean(rec["subject"])] += 1
        item.answers[clean_answer(rec["answer"])] += 1
        item.questions.append(clean(rec["question"]))

    label_keys = {question_key(item.label): lid for lid, item in labels.items()}
    entries: list[KBEntry] = []
    paraphrases: dict[str, list[str]] = {}
    dropped: Counter[str] = Counter()
    seen_keys: set[str] = set(label_keys)
    for lid in sorted(labels):
        item = labels[lid]
        entry_id = f"up_{lid:04d}"
        best = max(item.answers.items(), key=lambda kv: kv[1])[0]  # most frequent, first on ties
        entries.append(
            KBEntry(
                id=entry_id,
                category=item.subject(),
                question=item.label,
                answer=best or item.label,
            )
        )
        own: list[str] = []
        for question in item.questions:
            key = question_key(question)
            if not key:
                continue
            if key in label_keys:
                if label_keys[key] != lid:
                    dropped["is another entry's standard question"] += 1
                continue
            if key in seen_keys:
                dropped["repeated"] += 1
                continue
            seen_keys.add(key)
            own.append(question)
        paraphrases[entry_id] = own

    info: dict[str, object] = {
        "set": "unionpay",
        "paths": [UNIONPAY_TXT],
        "dropped_queries": dict(dropped),
        "records": len(records),
    }
    zeroshot_queries = [(q, e.id) for e in entries for q in paraphrases[e.id]]
    stats = [
        write_set(
            out / "unionpay" / "zeroshot",
            entries,
            zeroshot_queries,
            {**info, "variant": "zeroshot"},
        )
    ]

    rng = random.Random(seed)
    supervised: list[KBEntry] = []
    held: list[tuple[str, str]] = []
    for entry in entries:
        own = list(paraphrases[entry.id])
        rng.shuffle(own)
        n_out = 0 if len(own) < 2 else min(len(own) - 1, max(1, round(holdout * len(own))))
        held += [(q, entry.id) for q in own[:n_out]]
        kept = sorted(own[n_out:], key=paraphrases[entry.id].index)  # original order
        supervised.append(
            KBEntry(
                id=entry.id,
                category=entry.category,
                question=entry.question,
                answer=entry.answer,
                similar_questions=tuple(kept),
            )
        )
    stats.append(
        write_set(
            out / "unionpay" / "supervised",
            supervised,
            held,
            {**info, "variant": "supervised", "holdout": holdout, "seed": seed},
        )
    )
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repo",
        type=Path,
        default=DEFAULT_GIT_DIR,
        help=f"bare git directory of {REPO} (default {DEFAULT_GIT_DIR})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--sets", default="jining,unionpay", help="comma-separated sets")
    args = parser.parse_args()
    wanted = {s.strip() for s in args.sets.split(",") if s.strip()}
    stats: list[dict[str, object]] = []
    if "unionpay" in wanted:
        stats += unionpay(args.repo, args.out)
    if "jining" in wanted:
        stats += jining(args.repo, args.out)
    for s in stats:
        print(
            f"{s['set']}/{s['variant']}: {s['entries']} entries, "
            f"{s['similar_questions']} similar questions ({s['mean_similar_per_entry']}/entry), "
            f"{s['queries']} queries over {s['entries_with_queries']} entries; "
            f"dropped {s['dropped_queries']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
