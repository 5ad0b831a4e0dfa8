"""Every built-in name of Rasa 3.x is accepted: implemented, substituted with a note, or
refused in one line. Rasa-style pipelines (Chinese and Rasa's default English) train and
classify; tokenizers work without a normaliser."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bot.errors import ConfigError
from bot.nlu.interfaces import Message
from bot.nlu.registry import COMPONENTS, component_class
from bot.nlu.whitespace_tokenizer import whitespace_words
from tests.nlu_helpers import ZH_ENTITIES, build, nlu_data, round_trip, trained

RASA_NAMES = [
    "WhitespaceTokenizer",
    "JiebaTokenizer",
    "SpacyNLP",
    "SpacyTokenizer",
    "SpacyFeaturizer",
    "SpacyEntityExtractor",
    "MitieNLP",
    "MitieTokenizer",
    "MitieFeaturizer",
    "MitieIntentClassifier",
    "MitieEntityExtractor",
    "LanguageModelTokenizer",
    "ConveRTFeaturizer",
    "RegexFeaturizer",
    "LexicalSyntacticFeaturizer",
    "CountVectorsFeaturizer",
    "LanguageModelFeaturizer",
    "DIETClassifier",
    "KeywordIntentClassifier",
    "SklearnIntentClassifier",
    "LogisticRegressionClassifier",
    "FallbackClassifier",
    "CRFEntityExtractor",
    "RegexEntityExtractor",
    "DucklingEntityExtractor",
    "EntitySynonymMapper",
    "ResponseSelector",
]

EN_DATA = """\
- intent: greet
  examples: |
    - hey
    - hello
    - hi there
    - good morning
    - hello, how are you?
- intent: check_balance
  examples: |
    - what is my balance?
    - how much money is on my [savings](account) account
    - show me the balance of my [checking](account) account
    - how much do I have in [savings](account)
    - what's left on my [checking](account)
- intent: transfer
  examples: |
    - send [50](amount) dollars to [John](person)
    - transfer [100](amount) to [Mary](person)
    - pay [Anna](person) [20](amount) dollars
    - wire [1000](amount) to [Peter](person)
    - send [5](amount) bucks to [Bob](person)
- intent: chitchat/ask_name
  examples: |
    - what is your name?
    - who are you?
    - what should I call you
- intent: chitchat/ask_weather
  examples: |
    - how is the weather?
    - is it raining outside
    - will it be sunny today
"""

RASA_DEFAULT_EN = [
    {"name": "WhitespaceTokenizer"},
    {"name": "RegexFeaturizer"},
    {"name": "LexicalSyntacticFeaturizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
    {"name": "DIETClassifier", "epochs": 100, "constrain_similarities": True},
    {"name": "EntitySynonymMapper"},
    {"name": "ResponseSelector", "epochs": 100, "constrain_similarities": True},
    {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
]

RASA_ZH = [
    {"name": "JiebaTokenizer", "dictionary_path": None},
    {"name": "LanguageModelFeaturizer", "model_name": "bert", "model_weights": "bert-base-chinese"},
    {"name": "RegexFeaturizer"},
    {"name": "DIETClassifier", "epochs": 100, "transformer_layers": 2},
    {"name": "ResponseSelector", "epochs": 100},
    {"name": "EntitySynonymMapper"},
]


@pytest.mark.parametrize("name", RASA_NAMES)
def test_every_rasa_name_is_registered(name: str) -> None:
    assert name in COMPONENTS
    assert component_class(name).name == name


def test_rasa_default_english_pipeline_trains_and_classifies(tmp_path: Path) -> None:
    nlu = trained(RASA_DEFAULT_EN, nlu_data(tmp_path, EN_DATA), tmp_path, "en")
    assert nlu.parse("hello there!")["intent"]["name"] == "greet"
    result = nlu.parse("send 70 dollars to Mike")
    assert result["intent"]["name"] == "transfer"
    assert [(e["entity"], e["value"]) for e in result["entities"]] == [
        ("amount", "70"),
        ("person", "Mike"),
    ]
    assert all(e["extractor"] == "DIETClassifier" for e in result["entities"])
    chit = nlu.parse("who are you")
    assert chit["intent"]["name"] == "chitchat"
    assert chit["response_selector"]["default"]["response"]["intent_response_key"] == (
        "chitchat/ask_name"
    )
    notes = nlu.notes()
    assert any(
        "DIETClassifier: options of the neural network not honoured: "
        "constrain_similarities=True, epochs=100" in n
        for n in notes
    )
    assert len(notes) == len(set(notes))


def test_rasa_style_chinese_pipeline_without_normaliser(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, ZH_ENTITIES)
    started = time.perf_counter()
    nlu = trained(RASA_ZH, data, tmp_path)
    assert time.perf_counter() - started < 10
    result = nlu.parse("查下尾号2468的余额")
    assert result["intent"]["name"] == "query_balance"
    assert [(e["entity"], e["value"]) for e in result["entities"]] == [("card_last4", "2468")]
    assert nlu.parse("您好")["intent"]["name"] == "greet"
    lm_notes = [n for n in nlu.notes() if n.startswith("LanguageModelFeaturizer")]
    assert len(lm_notes) == 1
    assert "'bert-base-chinese' is not a local folder" in lm_notes[0]
    assert "model_weights to that path" in lm_notes[0]
    assert "transformer_layers=2" in " ".join(nlu.notes())
    loaded = round_trip(nlu, tmp_path)
    assert loaded.parse("查下尾号2468的余额") == result


def test_hand_written_pipeline_without_normaliser_trains(tmp_path: Path) -> None:
    pipeline = [
        {"name": "JiebaTokenizer", "dictionary_path": None},
        {"name": "TfidfVectorsFeaturizer", "analyzer": "word"},
        {"name": "TfidfVectorsFeaturizer", "analyzer": "char"},
        {"name": "LogisticRegressionClassifier"},
        {"name": "RegexEntityExtractor"},
    ]
    nlu = trained(pipeline, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    assert nlu.parse("查余额")["intent"]["name"] == "query_balance"


def test_whitespace_tokenizer_as_rasa() -> None:
    words = [t.text for t in whitespace_words("Hello, world! pay 10'000.00 to me@mail.com...")]
    assert words == ["Hello", "world", "pay", "10'000.00", "to", "me@mail.com"]
    text = "ok ... fine"
    assert [(t.text, t.start, t.end) for t in whitespace_words(text)] == [
        ("ok", 0, 2),
        ("fine", 7, 11),
    ]
    assert [t.text for t in whitespace_words("!!!")] == ["!!!"]


def test_tokenizer_options_are_accepted(tmp_path: Path) -> None:
    nlu = build(
        [
            {
                "name": "WhitespaceTokenizer",
                "intent_tokenization_flag": True,
                "intent_split_symbol": "+",
                "token_pattern": r"\w+",
            }
        ]
    )
    assert any("intent_tokenization_flag" in n for n in nlu.notes())
    message = nlu.process("a-b c")
    assert [t.text for t in message.tokens] == ["a", "b", "c"]


def test_jieba_dictionary_path_may_be_rasa_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dicts"
    folder.mkdir()
    (folder / "a.txt").write_text("尾号查询 100\n", encoding="utf-8")
    (folder / "b.txt").write_text("信用卡余额 100\n", encoding="utf-8")
    data = nlu_data(
        tmp_path, "- intent: a\n  examples: |\n    - 你好\n- intent: b\n  examples: |\n    - 再见\n"
    )
    nlu = trained([{"name": "JiebaTokenizer", "dictionary_path": "dicts"}], data, tmp_path)
    assert [t.text for t in nlu.process("尾号查询信用卡余额").tokens] == ["尾号查询", "信用卡余额"]


def test_count_vectors_oov_and_analyzers(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        "- intent: a\n  examples: |\n    - hello world\n"
        "- intent: b\n  examples: |\n    - bye world\n",
    )
    nlu = trained(
        [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer", "OOV_token": "oov", "OOV_words": ["bye"]},
        ],
        data,
        tmp_path,
        "en",
    )
    featurizer: Any = nlu.components[1]
    assert set(featurizer.vocabulary) == {"hello", "world", "oov"}
    features = nlu.process("Unknown WORLD").features[0]
    assert sorted(features.indices.tolist()) == sorted(
        [featurizer.vocabulary["oov"], featurizer.vocabulary["world"]]
    )
    char_wb = trained(
        [
            {"name": "WhitespaceTokenizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 2,
                "max_ngram": 2,
            },
        ],
        data,
        tmp_path,
        "en",
    )
    assert " h" in char_wb.components[1].vocabulary  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"CountVectorsFeaturizer.*analyzer"):
        build([{"name": "CountVectorsFeaturizer", "analyzer": "bytes"}])


def test_regex_and_lexical_featurizers(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, ZH_ENTITIES + "- lookup: city\n  examples: |\n    - 上海\n")
    nlu = trained(
        [
            {"name": "JiebaTokenizer", "dictionary_path": None},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
        ],
        data,
        tmp_path,
    )
    regex, lexical = nlu.process("尾号1234 上海").features
    assert regex.dim == 2 and regex.indices.tolist() == [0, 1]
    assert nlu.process("你好").features[0].indices.tolist() == []
    assert lexical.dim > 0 and np.isclose(float(lexical.values @ lexical.values), 1.0)
    loaded = round_trip(nlu, tmp_path)
    assert loaded.process("尾号1234").features[0].indices.tolist() == [0]


def test_language_model_folder_without_the_library_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "config.json").write_text("{}", encoding="utf-8")
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="LanguageModelFeaturizer: model_weights folder"):
            build([{"name": "LanguageModelFeaturizer", "model_weights": "lm"}], tmp_path)
    else:  # pragma: no cover - the library is not a dependency
        pytest.skip("transformers is installed")


def test_keyword_classifier(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        "- intent: greet\n  examples: |\n    - hello\n    - 你好\n"
        "- intent: bye\n  examples: |\n    - bye\n    - 再见\n",
    )
    nlu = trained([{"name": "KeywordIntentClassifier"}], data, tmp_path)
    assert nlu.parse("well hello there")["intent"] == {"name": "greet", "confidence": 1.0}
    assert nlu.parse("那就再见吧")["intent"]["name"] == "bye"
    assert nlu.parse("othello")["intent"]["name"] is None  # whole words for English
    assert round_trip(nlu, tmp_path).parse("bye now")["intent"]["name"] == "bye"


def test_sklearn_intent_classifier(tmp_path: Path) -> None:
    nlu = trained(
        [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "SklearnIntentClassifier", "C": [1, 10], "kernels": ["linear"]},
        ],
        nlu_data(tmp_path, EN_DATA),
        tmp_path,
        "en",
    )
    result = nlu.parse("how much money is in my savings")
    assert result["intent"]["name"] == "check_balance"
    assert abs(sum(r["confidence"] for r in result["intent_ranking"]) - 1) < 1e-3
    assert round_trip(nlu, tmp_path).parse("hello")["intent"] == nlu.parse("hello")["intent"]


def test_duckling_without_url_is_refused_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_DUCKLING_HTTP_URL", raising=False)
    with pytest.raises(ConfigError, match="DucklingEntityExtractor: option 'url' is not set"):
        build([{"name": "DucklingEntityExtractor"}])


def test_duckling_asks_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.nlu.duckling import DucklingEntityExtractor

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content.decode())
        return httpx.Response(
            200,
            json=[
                {
                    "dim": "number",
                    "start": 2,
                    "end": 3,
                    "body": "5",
                    "value": {"value": 5, "type": "value"},
                },
                {"dim": "time", "start": 0, "end": 2, "body": "明天", "value": {"value": "x"}},
            ],
        )

    monkeypatch.setattr(DucklingEntityExtractor, "transport", httpx.MockTransport(answer))
    nlu = build(
        [
            {
                "name": "DucklingEntityExtractor",
                "url": "http://duckling:8000",
                "dimensions": ["number"],
            }
        ]
    )
    entities = nlu.parse("明天5点")["entities"]
    assert entities == [
        {
            "entity": "number",
            "start": 2,
            "end": 3,
            "value": 5,
            "confidence": 1.0,
            "additional_info": {"value": 5, "type": "value"},
            "extractor": "DucklingEntityExtractor",
        }
    ]
    assert "locale=zh_CN" in seen[0]


def test_spacy_without_a_model_uses_blank(tmp_path: Path) -> None:
    pipeline = [
        {"name": "SpacyNLP", "model": "zh_core_web_md"},
        {"name": "SpacyTokenizer"},
        {"name": "SpacyFeaturizer"},
        {"name": "LogisticRegressionClassifier"},
    ]
    nlu = trained(pipeline, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    notes = nlu.notes()
    assert any(
        "no spaCy model 'zh_core_web_md' is installed; using spacy.blank('zh')" in n for n in notes
    )
    assert any(
        n.startswith("SpacyFeaturizer: the spaCy pipeline has no word vectors") for n in notes
    )
    assert nlu.parse("您好")["intent"]["name"] == "greet"
    assert round_trip(nlu, tmp_path).parse("查余额") == nlu.parse("查余额")
    with pytest.raises(ConfigError, match="SpacyTokenizer: needs SpacyNLP"):
        build([{"name": "SpacyTokenizer"}])
    with pytest.raises(ConfigError, match="SpacyEntityExtractor: the spaCy pipeline has no"):
        build([{"name": "SpacyNLP"}, {"name": "SpacyEntityExtractor"}])


def test_mitie_components_are_substituted_once(tmp_path: Path) -> None:
    pipeline = [
        {"name": "MitieNLP", "model": "data/total_word_feature_extractor.dat"},
        {"name": "MitieTokenizer"},
        {"name": "MitieFeaturizer"},
        {"name": "MitieIntentClassifier"},
        {"name": "MitieEntityExtractor"},
    ]
    nlu = trained(pipeline, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    notes = nlu.notes()
    assert notes[0].startswith("MitieNLP: MITIE is not installed")
    assert "MitieTokenizer: MITIE is not installed; using JiebaTokenizer" in notes
    assert "MitieEntityExtractor: MITIE is not installed; using CRFEntityExtractor" in notes
    result = nlu.parse("查下尾号2468的余额")
    assert result["intent"]["name"] == "query_balance"
    assert [(e["value"], e["extractor"]) for e in result["entities"]] == [
        ("2468", "MitieEntityExtractor")
    ]
    assert round_trip(nlu, tmp_path).parse("查下尾号2468的余额") == result


def test_regex_entity_extractor_rasa_options(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        "- intent: a\n  examples: |\n    - pay by card\n"
        "- intent: b\n  examples: |\n    - hi\n"
        "- lookup: method\n  examples: |\n    - card\n    - Cash\n",
    )
    nlu = trained(
        [{"name": "WhitespaceTokenizer"}, {"name": "RegexEntityExtractor"}], data, tmp_path, "en"
    )
    # matched without regard to case; the value is the text as written, as Rasa's
    assert [e["value"] for e in nlu.parse("CARD or discard or cash")["entities"]] == [
        "CARD",
        "cash",
    ]
    strict = trained(
        [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexEntityExtractor", "case_sensitive": True, "use_word_boundaries": False},
        ],
        data,
        tmp_path,
        "en",
    )
    found = [(e["start"], e["end"]) for e in strict.parse("CARD discard Cash")["entities"]]
    assert found == [(8, 12), (13, 17)]  # "card" inside "discard", then "Cash"


def test_messages_without_normaliser_keep_original_offsets() -> None:
    nlu = build([{"name": "WhitespaceTokenizer"}])
    message: Message = nlu.process("  Hello  World ")
    assert [(t.text, t.start, t.end) for t in message.tokens] == [("Hello", 2, 7), ("World", 9, 14)]
    assert json.loads(json.dumps(nlu.parse("x")))["text"] == "x"


def test_language_model_substitute_reads_normalised_text(tmp_path: Path) -> None:
    nlu = trained(
        [
            {"name": "JiebaTokenizer", "dictionary_path": None},
            {"name": "LanguageModelFeaturizer", "model_weights": "LaBSE"},
        ],
        nlu_data(tmp_path, ZH_ENTITIES),
        tmp_path,
    )
    simplified = nlu.process("查一下余额").features[0]
    for variant in ("查一下餘額", "查一下余额　"):
        features = nlu.process(variant).features[0]
        assert features.indices.tolist() == simplified.indices.tolist(), variant
    message = nlu.process("查一下餘額")
    assert message.norm == "查一下餘額"  # the message itself is not normalised


def test_bot_train_without_a_normaliser(tiny_project: Path) -> None:
    from bot.cli.main import main
    from bot.model import load_model

    config = tiny_project / "config.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("  - name: ChineseTextNormalizer\n", ""),
        encoding="utf-8",
    )
    assert main(["train", "--project", str(tiny_project)]) == 0
    model = load_model(tiny_project / "models")
    assert model.nlu.parse("查下余额")["intent"]["name"] == "query_balance"


# --- Rasa projects in English: roles beside rule-based entities, values as written, OOV ------

EN_PIPELINE: list[dict[str, Any]] = [
    {"name": "WhitespaceTokenizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
    {"name": "DIETClassifier", "epochs": 100},
    {"name": "RegexEntityExtractor"},
    {"name": "EntitySynonymMapper"},
    {"name": "FallbackClassifier", "threshold": 0.3},
]

TRAVEL = (
    """\
- intent: book_flight
  examples: |
    - I want to fly from [Berlin]<dep> to [London]<dst>
    - book a flight from [Paris]<dep> to [Rome]<dst>
    - flight from [Madrid]<dep> to [Vienna]<dst>
    - fly me to [London]<dst> from [Rome]<dep>
    - I want to go to [Berlin]<dst> from [Madrid]<dep>
    - get me a ticket from [Vienna]<dep> to [Paris]<dst>
    - I need a flight to [NYC]<nyc>
- intent: greet
  examples: |
    - hi
    - hello
    - hey there
    - good morning
    - hello there
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you later
    - bye bye
    - that's all, bye
- synonym: New York
  examples: |
    - NYC
""".replace("<dep>", '{"entity": "city", "role": "departure"}')
    .replace("<dst>", '{"entity": "city", "role": "destination"}')
    .replace("<nyc>", '{"entity": "city", "role": "destination", "value": "New York"}')
)


@pytest.fixture(scope="module")
def travel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("travel")
    return trained(EN_PIPELINE, nlu_data(tmp, TRAVEL), tmp, "en")


def test_learned_roles_stay_beside_the_rule_based_entity(travel: Any) -> None:
    """RegexEntityExtractor finds the annotated cities too; the CRF's entities with their
    roles stay (a mapping with ``role`` takes them), the rule-based ones without a role too
    (a mapping without one takes those), as Rasa keeps every extractor's entities."""
    found = {
        (e["entity"], e.get("role"), e["value"], e["extractor"])
        for e in travel.parse("I want to fly from Berlin to London")["entities"]
    }
    assert ("city", "departure", "Berlin", "DIETClassifier") in found
    assert ("city", "destination", "London", "DIETClassifier") in found
    assert ("city", None, "Berlin", "RegexEntityExtractor") in found
    nyc = travel.parse("I need a flight to NYC")["entities"]
    assert {(e.get("role"), e["value"]) for e in nyc} == {
        ("destination", "New York"),
        (None, "New York"),
    }


def test_learned_entity_without_role_is_still_replaced(tmp_path: Path) -> None:
    from bot.nlu.entity_merge import add_learned, add_rule_based

    message = Message("from Berlin")
    rule = {
        "entity": "city",
        "start": 5,
        "end": 11,
        "value": "Berlin",
        "extractor": "RegexEntityExtractor",
    }
    learned = {**rule, "extractor": "DIETClassifier"}
    add_rule_based(message, rule)
    assert not add_learned(message, dict(learned))
    assert add_learned(message, {**learned, "role": "departure"})
    message = Message("from Berlin")
    add_learned(message, dict(learned))
    add_rule_based(message, dict(rule))
    assert [e["extractor"] for e in message.entities] == ["RegexEntityExtractor"]


def test_rule_based_values_keep_the_case_as_written(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, TRAVEL + "- lookup: city\n  examples: |\n    - berlin\n")
    nlu = trained(
        [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "LogisticRegressionClassifier"},
            {"name": "RegexEntityExtractor"},
        ],
        data,
        tmp_path,
        "en",
    )
    values = [e["value"] for e in nlu.parse("fly from BERLIN to Rome or NYC")["entities"]]
    assert values == ["BERLIN", "Rome", "New York"]  # a synonym gives its canonical value
    zh = trained(
        [
            {"name": "ChineseTextNormalizer"},
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "LogisticRegressionClassifier"},
            {"name": "RegexEntityExtractor"},
        ],
        data,
        tmp_path,
        "en",
    )
    # the normaliser lower-cases and turns full-width letters into ASCII: ASCII, as written
    assert [e["value"] for e in zh.parse("fly to Ｒｏｍｅ")["entities"]] == ["Rome"]


def test_a_message_of_unknown_words_gets_no_confident_intent(travel: Any) -> None:
    gibberish = travel.parse("xqzt vbnm plok")
    assert gibberish["intent"]["name"] == "nlu_fallback"
    # [0] is nlu_fallback; three intents: near the uniform 1/3, and ambiguous
    assert gibberish["intent_ranking"][1]["confidence"] < 0.4
    assert travel.parse("helo")["intent"]["name"] == "greet"  # a typo of a training word
    assert travel.parse("hello there")["intent"]["confidence"] > 0.8
    assert travel.parse("bye Bob")["intent"]["name"] == "goodbye"  # one known word is enough
