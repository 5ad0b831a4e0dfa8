"""Customer- and agent-facing words live in responses, not in Python: ``domain.yml`` for the
bank's actions, ``bot/resources/responses/*.yml`` for the engine's built-in ones. This test
parses every ``.py`` under ``bot/`` and ``actions/`` and fails on a Chinese sentence in code,
and checks that every response name the code uses exists."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import yaml

from bot.builtin_responses import builtin_responses

ROOT = Path(__file__).resolve().parents[1]

# Being converted by the TURN engineer (handoff and turn wording); the coordinator empties
# this list when merging. Do not add to it: move the sentence to a response instead.
PENDING: tuple[str, ...] = ()

# Where Chinese is data, not sentences: the sandbox bank's records, lexicons and value
# tables of the NLU and the knowledge base, knowledge-base import column names, and the CLI
# (trainer- and operator-facing output, not customer wording).
ALLOWED = (
    "bot/bank/sandbox.py",  # the sandbox bank's customers, products, step names
    "bot/nlu/sentiment/lexicon.py",  # the sentiment lexicon
    "bot/nlu/*lexicon*",  # NLU lexicons
    "bot/nlu/entity_values.py",  # Chinese numerals, weekdays, relative dates
    "bot/kb/import_formats.py",  # column names of knowledge-base imports
    "bot/kb/text.py",  # number folding tables of the knowledge base
    "bot/cli/*",  # command-line output for trainers and operators
)

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Punctuation that ends or joins clauses of a Chinese sentence.
SENTENCE_PUNCTUATION = re.compile(r"[。，？！；：「」『』“”…]")
LONG = 8  # a string with this many Chinese characters reads as a sentence, not a label
FIX = "move it to domain.yml responses or bot/resources/responses/*.yml"
RESPONSE_NAME = re.compile(r"utter_[a-z0-9_]+")


def python_files(*folders: str) -> Iterator[tuple[str, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            shown = path.relative_to(ROOT).as_posix()
            yield shown, ast.parse(path.read_text(encoding="utf-8"), shown)


def _docstrings(tree: ast.Module) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _shown_value(node: ast.expr) -> str | None:
    """A string constant, or an f-string with its placeholders as ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
            for v in node.values
        )
    return None


def _words_for_people(tree: ast.Module) -> set[int]:
    """Strings a person reads whatever their length: a button ``title``, a message ``text=``
    and anything given to ``utter_message``."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in ("title", "text"):
                    found.add(id(value))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for keyword in node.keywords:
                if keyword.arg == "text" or called == "utter_message":
                    found.add(id(keyword.value))
            if called == "utter_message":
                found.update(id(a) for a in node.args)
    return found


def sentences(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """The Chinese sentences written in code: (line, text)."""
    skip = _docstrings(tree)
    for_people = _words_for_people(tree)
    parts: set[int] = set()  # the constants inside an f-string, judged as the whole
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in parts or not isinstance(node, ast.expr):
            continue
        text = _shown_value(node)
        if text is None or not CJK.search(text):
            continue
        if (
            id(node) in for_people
            or SENTENCE_PUNCTUATION.search(text)
            or len(CJK.findall(text)) >= LONG
        ):
            yield node.lineno, text


def _listed(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(path, pattern) for pattern in patterns)


def test_no_chinese_sentences_in_python() -> None:
    found = [
        f"{path}:{line}: {text[:40]!r} - {FIX}"
        for path, tree in python_files("bot", "actions")
        if not _listed(path, ALLOWED + PENDING)
        for line, text in sentences(tree)
    ]
    assert not found, "Chinese sentences in Python:\n" + "\n".join(found)


def test_the_rule_flags_sentences_and_button_titles_but_not_data() -> None:
    code = '''
"""模块说明：文档字符串不算。"""
SYNONYMS = {"储蓄卡": "debit_card", "信用卡": "credit_card"}
PRODUCT = "个人消费贷"
ASK = "请问您要查询哪一张卡？"
LONG = "为保护您的账户安全请先登录"
BUTTON = {"title": "转人工", "payload": "/request_human"}
def run(dispatcher, last4):
    dispatcher.utter_message(text=f"尾号{last4}")
    return f"您尾号{last4}的卡已冻结。"
'''
    flagged = sorted(line for line, _ in sentences(ast.parse(code)))
    assert flagged == [5, 6, 7, 9, 10]


def test_pending_and_allowed_entries_name_existing_files() -> None:
    files = [path for path, _ in python_files("bot", "actions")]
    for pattern in PENDING + ALLOWED:
        if pattern != "bot/nlu/*lexicon*":
            assert any(fnmatch(path, pattern) for path in files), pattern


def _response_names(trees: Iterator[tuple[str, ast.Module]]) -> Iterator[tuple[str, int, str]]:
    """Every ``utter_…`` string constant of the code (response names): (path, line, name)."""
    for path, tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and RESPONSE_NAME.fullmatch(node.value)
            ):
                yield path, node.lineno, node.value


def test_actions_send_responses_not_texts() -> None:
    found = [
        f"{path}:{node.lineno}: utter_message without response= - {FIX}"
        for path, tree in python_files("actions")
        if not _listed(path, PENDING)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "utter_message"
        and "response" not in {k.arg for k in node.keywords}
    ]
    assert not found, "\n".join(found)


def test_every_response_the_actions_use_is_in_the_domain() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    used = list(_response_names(python_files("actions")))
    missing = [
        f"{path}:{line}: {name}"
        for path, line, name in used
        if name not in domain["responses"] and name not in builtin_responses()
    ]
    assert not missing, (
        "responses missing from domain.yml and the built-in responses:\n" + "\n".join(missing)
    )
    assert len({name for _, _, name in used}) >= 30  # the scan sees the bank actions' names


# The engine's ways to send a response by name: its first argument.
RESPONSE_FUNCTIONS = {"utter", "say", "response_event", "builtin_text"}


def _engine_response_names(
    trees: Iterator[tuple[str, ast.Module]],
) -> Iterator[tuple[str, int, str]]:
    for path, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in RESPONSE_FUNCTIONS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and RESPONSE_NAME.fullmatch(first.value)
            ):
                yield path, node.lineno, first.value


def test_every_built_in_response_the_engine_uses_exists() -> None:
    builtin = builtin_responses()
    used = list(_engine_response_names(python_files("bot")))
    missing = [f"{path}:{line}: {name}" for path, line, name in used if name not in builtin]
    assert not missing, "missing from bot/resources/responses/*.yml:\n" + "\n".join(missing)
    names = {name for _, _, name in used}
    assert {
        "utter_ask_affirmation",
        "utter_ask_missing_slot",
        "utter_busy",
        "utter_default",
    } <= names
