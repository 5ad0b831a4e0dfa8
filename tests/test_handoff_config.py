"""``handoff.yml`` (bot/handoff/config.py): defaults, a full mapping, clear errors for bad
input, opening hours, environment overrides, and the shipped file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.handoff.config import (
    AGENT_SECRET_ENV,
    DEV_AGENT_SECRET,
    WEBHOOK_URL_ENV,
    Group,
    HandoffConfig,
    Hours,
    Rule,
    load,
    parse,
)

REPO = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")

FULL: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "groups": [
        {"name": "账户", "description": "储蓄卡", "hours": {"time": "08:00-22:00"}},
        {"name": "信用卡", "hours": "00:00-24:00"},
        {"name": "贷款", "hours": {"time": "09:30-18:00", "days": [1, 2, 3, 4, 5]}},
        "投诉",
        {"name": "老年客户专线"},
    ],
    "routing": {
        "default_group": "信用卡",
        "elderly_group": "老年客户专线",
        "intents": {"complain": "投诉"},
        "entities": {"account_type": {"credit_card": "信用卡", "debit_card": "账户"}},
        "knowledge_categories": {"贷款": "贷款"},
    },
    "priorities": {"complaint": 5, "elderly": 4, "vip": 3, "elderly_age": 65},
    "triggers": {
        "intents": ["request_human"],
        "fallbacks_in_a_row": 3,
        "sentiment": {"threshold": 0.6, "window": 4},
        "action_failed": False,
        "rules": [
            {"name": "loan_advice", "keywords": ["贷款方案"], "group": "贷款", "priority": 2},
            {"intents": ["request_human"], "min_age": 70, "vip": True},
        ],
    },
    "queue": {"max_wait_seconds": 120, "average_handle_seconds": 90, "auto_assign": False},
    "agents": {
        "default_capacity": 5,
        "token_minutes": 60,
        "secret": "from-the-file",
        "resolutions": ["done", "later"],
        "canned_replies": [{"title": "问候", "text": "您好"}],
    },
    "webhook": {"url": "https://desk.example/hook", "secret": "s3"},
}


def config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(raw, {})
    return str(info.value)


# --- parse ----------------------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    config = parse({}, {})
    assert config.group_names == ["人工客服"]
    assert config.default_group == "人工客服"
    assert config.elderly_group is None
    assert config.triggers.intents == {"request_human", "complain"}
    assert config.triggers.fallbacks_in_a_row == 2
    assert config.triggers.sentiment_threshold == 0.75
    assert config.triggers.sentiment_window == 3
    assert config.triggers.action_failed is True
    assert config.rules == ()
    assert config.timezone == "Asia/Shanghai"
    assert (config.max_wait_seconds, config.average_handle_seconds) == (300.0, 240.0)
    assert config.auto_assign is True
    assert config.default_capacity == 3
    assert config.resolutions == ("resolved", "follow_up", "transferred_offline", "no_reply")
    assert config.webhook_url is None and config.agent_secret is None
    assert config.uses_dev_secret and config.secret == DEV_AGENT_SECRET
    assert config.group("人工客服") == Group("人工客服", Hours(), "")


def test_load_without_a_file_is_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, {}) == parse({}, {})


def test_a_full_mapping() -> None:
    config = parse(FULL, {})
    assert config.group_names == ["账户", "信用卡", "贷款", "投诉", "老年客户专线"]
    account = config.group("账户")
    assert account is not None and account.description == "储蓄卡"
    assert account.hours.start.hour == 8 and account.hours.end_minutes == 22 * 60
    credit = config.group("信用卡")
    assert credit is not None and credit.hours.end_minutes == 24 * 60  # a plain string
    loan = config.group("贷款")
    assert loan is not None and loan.hours.days == {1, 2, 3, 4, 5}
    assert (loan.hours.start.hour, loan.hours.start.minute) == (9, 30)
    assert config.default_group == "信用卡"
    assert config.elderly_group == "老年客户专线"
    assert dict(config.intent_groups) == {"complain": "投诉"}
    assert config.entity_groups["account_type"]["debit_card"] == "账户"
    assert dict(config.category_groups) == {"贷款": "贷款"}
    p = config.priorities
    assert (p.complaint, p.elderly, p.vip, p.elderly_age) == (5, 4, 3, 65)
    t = config.triggers
    assert t.intents == {"request_human"} and t.fallbacks_in_a_row == 3
    assert (t.sentiment_threshold, t.sentiment_window, t.action_failed) == (0.6, 4, False)
    assert config.rules[0] == Rule("loan_advice", frozenset(), ("贷款方案",), None, None, "贷款", 2)
    assert config.rules[1] == Rule("rule_2", frozenset({"request_human"}), (), 70, True, None, 0)
    assert config.timezone == "Europe/Berlin" and config.zone == ZoneInfo("Europe/Berlin")
    assert (config.max_wait_seconds, config.average_handle_seconds) == (120.0, 90.0)
    assert config.auto_assign is False
    assert (config.default_capacity, config.token_minutes) == (5, 60)
    assert config.resolutions == ("done", "later")
    assert config.canned_replies == (("问候", "您好"),)
    assert (config.webhook_url, config.webhook_secret) == ("https://desk.example/hook", "s3")
    assert config.agent_secret == "from-the-file" and not config.uses_dev_secret
    assert config.secret == "from-the-file"


def test_the_default_group_is_the_first_one_unless_named() -> None:
    assert parse({"groups": ["甲", "乙"]}, {}).default_group == "甲"


def test_capacity_is_at_least_one_and_the_window_at_least_one() -> None:
    config = parse(
        {"agents": {"default_capacity": 0}, "triggers": {"sentiment": {"window": 0}}}, {}
    )
    assert config.default_capacity == 1 and config.triggers.sentiment_window == 1


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routing", "where"),
    [
        ({"default_group": "外星人"}, "routing.default_group"),
        ({"elderly_group": "外星人"}, "routing.elderly_group"),
        ({"intents": {"complain": "外星人"}}, "routing.intents"),
        (
            {"entities": {"account_type": {"credit_card": "外星人"}}},
            "routing.entities.account_type",
        ),
        ({"knowledge_categories": {"贷款": "外星人"}}, "routing.knowledge_categories"),
    ],
)
def test_routing_to_an_unknown_group(routing: dict[str, Any], where: str) -> None:
    message = config_error({"groups": ["账户", "信用卡"], "routing": routing})
    assert where in message and "'外星人'" in message
    assert "账户" in message and "信用卡" in message  # names the groups there are


def test_a_rule_naming_an_unknown_group() -> None:
    message = config_error(
        {"groups": ["账户"], "triggers": {"rules": [{"keywords": ["贷款"], "group": "贷款"}]}}
    )
    assert "triggers.rules[0].group" in message and "'贷款'" in message


def test_a_rule_needs_intents_or_keywords() -> None:
    message = config_error({"triggers": {"rules": [{"name": "x", "min_age": 60}]}})
    assert "triggers.rules[0]" in message and "'intents' or 'keywords'" in message


def test_rule_keywords_must_be_a_list() -> None:
    message = config_error({"triggers": {"rules": [{"keywords": "贷款方案"}]}})
    assert "triggers.rules[0].keywords must be a list" in message


@pytest.mark.parametrize(
    "spec",
    [
        "25:00-26:00",
        "08:60-09:00",
        "09:00-08:00",
        "10:00-10:00",
        "00:00-24:01",
        "8-9",
        "nine to five",
        "24:00-24:00",
    ],
)
def test_bad_hours(spec: str) -> None:
    message = config_error({"groups": [{"name": "账户", "hours": {"time": spec}}]})
    assert "groups[0].hours.time" in message and spec.replace(" ", "") in message


@pytest.mark.parametrize("days", [[0], [8], [1, 2, 9], "1-5", [1.5], ["Monday"]])
def test_days_outside_one_to_seven(days: Any) -> None:
    message = config_error({"groups": [{"name": "账户", "hours": {"days": days}}]})
    assert "groups[0].hours.days" in message and "1 (Monday)" in message


def test_duplicate_group_names() -> None:
    message = config_error({"groups": ["账户", {"name": "账户"}]})
    assert "group names must be unique" in message


def test_a_group_needs_a_name() -> None:
    assert "groups[1] has no name" in config_error({"groups": ["账户", {"hours": "08:00-09:00"}]})


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01, 2])
def test_sentiment_threshold_out_of_range(threshold: float) -> None:
    message = config_error({"triggers": {"sentiment": {"threshold": threshold}}})
    assert "triggers.sentiment.threshold must be in (0, 1]" in message


def test_threshold_of_one_is_allowed() -> None:
    assert (
        parse({"triggers": {"sentiment": {"threshold": 1}}}, {}).triggers.sentiment_threshold == 1.0
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_timezone(zone: str) -> None:
    assert f"unknown timezone {zone!r}" in config_error({"timezone": zone})


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"groups": {"name": "账户"}}, "'groups' must be a list"),
        ({"groups": [["账户"]]}, "groups[0] must be a mapping"),
        (
            {"groups": [{"name": "账户", "hours": ["08:00-09:00"]}]},
            "groups[0].hours must be a mapping",
        ),
        ({"routing": ["账户"]}, "routing must be a mapping"),
        ({"routing": {"intents": ["complain"]}}, "routing.intents must be a mapping"),
        ({"routing": {"entities": ["account_type"]}}, "routing.entities must be a mapping"),
        (
            {"routing": {"entities": {"account_type": "信用卡"}}},
            "routing.entities.account_type must be a mapping",
        ),
        ({"routing": {"knowledge_categories": "贷款"}}, "routing.knowledge_categories must be a"),
        ({"priorities": [1, 2]}, "priorities must be a mapping"),
        ({"triggers": "request_human"}, "triggers must be a mapping"),
        ({"triggers": {"sentiment": 0.8}}, "triggers.sentiment must be a mapping"),
        ({"triggers": {"rules": [["贷款"]]}}, "triggers.rules[0] must be a mapping"),
        ({"queue": 300}, "queue must be a mapping"),
        ({"agents": "alice"}, "agents must be a mapping"),
        ({"agents": {"canned_replies": ["您好"]}}, "agents.canned_replies[0] must be a mapping"),
        ({"webhook": "https://desk.example"}, "webhook must be a mapping"),
    ],
)
def test_sections_that_are_not_mappings(raw: dict[str, Any], where: str) -> None:
    assert where in config_error(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"priorities": {"vip": "high"}},
        {"triggers": {"sentiment": {"threshold": "very"}}},
        {"triggers": {"fallbacks_in_a_row": "two"}},
        {"queue": {"max_wait_seconds": "long"}},
    ],
)
def test_non_numbers_in_the_file_are_config_errors(tmp_path: Path, raw: dict[str, Any]) -> None:
    import yaml

    (tmp_path / "handoff.yml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, {})
    assert str(tmp_path / "handoff.yml") in str(info.value)


def test_invalid_yaml_and_a_non_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text("groups: [账户\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load(tmp_path, {})
    path.write_text("- 账户\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"handoff.yml:1: expected a mapping"):
        load(tmp_path, {})


@pytest.mark.parametrize(
    "raw",
    [
        {"triggers": {"intents": "request_human"}},
        {"triggers": {"rules": [{"intents": "request_human", "group": "人工客服"}]}},
    ],
)
def test_a_single_intent_given_as_a_string_is_not_split_into_characters(
    raw: dict[str, Any],
) -> None:
    """``intents: request_human`` (a string, not a list) must either be refused with a
    ConfigError or mean that one intent; never the set of its letters."""
    try:
        config = parse(raw, {})
    except ConfigError as exc:
        assert "intents" in str(exc)
        return
    intents = config.rules[0].intents if config.rules else config.triggers.intents
    assert intents == {"request_human"}


# --- hours ----------------------------------------------------------------------------------


def test_open_at_times_and_days() -> None:
    hours = Hours(datetime(2024, 1, 1, 9, 0).time(), 18 * 60, frozenset({1, 2, 3, 4, 5}))
    monday = datetime(2024, 1, 1)  # a Monday
    assert monday.isoweekday() == 1
    assert not hours.open_at(monday.replace(hour=8, minute=59))
    assert hours.open_at(monday.replace(hour=9, minute=0))  # start is inclusive
    assert hours.open_at(monday.replace(hour=17, minute=59))
    assert not hours.open_at(monday.replace(hour=18, minute=0))  # end is exclusive
    friday, saturday, sunday = (monday.replace(day=d, hour=12) for d in (5, 6, 7))
    assert hours.open_at(friday)
    assert not hours.open_at(saturday) and not hours.open_at(sunday)


def test_open_until_midnight() -> None:
    hours = parse({"groups": [{"name": "信用卡", "hours": "00:00-24:00"}]}, {}).groups[0].hours
    day = datetime(2024, 1, 7)
    assert hours.open_at(day.replace(hour=0, minute=0))
    assert hours.open_at(day.replace(hour=23, minute=59))
    evening = parse({"groups": [{"name": "a", "hours": "20:00-24:00"}]}, {}).groups[0].hours
    assert evening.open_at(day.replace(hour=23, minute=59))
    assert not evening.open_at(day.replace(hour=0, minute=30))


def test_is_open_in_the_configured_timezone() -> None:
    config = parse(
        {
            "timezone": "Asia/Shanghai",
            "groups": [
                {"name": "贷款", "hours": {"time": "09:00-18:00", "days": [1, 2, 3, 4, 5]}},
                {"name": "账户", "hours": "08:00-22:00"},
            ],
        },
        {},
    )

    def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
        return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).timestamp()

    # 2024-01-01 is a Monday; 09:00 in Shanghai is 01:00 UTC
    assert at(2024, 1, 1, 9) == datetime(2024, 1, 1, 1, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert not config.is_open("贷款", at(2024, 1, 1, 8, 59))
    assert config.is_open("贷款", at(2024, 1, 1, 9))
    assert not config.is_open("贷款", at(2024, 1, 1, 18))
    assert not config.is_open("贷款", at(2024, 1, 6, 10))  # Saturday
    assert config.is_open("账户", at(2024, 1, 6, 10))
    assert not config.is_open("账户", at(2024, 1, 6, 22, 30))
    assert config.is_open("不存在的组", at(2024, 1, 6, 3))  # unknown groups never close
    # the same instant elsewhere: 09:00 Shanghai is 02:00 in Berlin (closed)
    berlin = parse(
        {
            "timezone": "Europe/Berlin",
            "groups": [{"name": "贷款", "hours": {"time": "09:00-18:00", "days": [1, 2, 3, 4, 5]}}],
        },
        {},
    )
    assert not berlin.is_open("贷款", at(2024, 1, 1, 9))
    assert berlin.is_open("贷款", at(2024, 1, 1, 17))  # 10:00 in Berlin


# --- environment ----------------------------------------------------------------------------


def test_environment_overrides_the_file() -> None:
    env = {AGENT_SECRET_ENV: "from-env", WEBHOOK_URL_ENV: "https://env.example/hook"}
    config = parse(FULL, env)
    assert config.agent_secret == "from-env" and config.secret == "from-env"
    assert config.webhook_url == "https://env.example/hook"
    assert config.webhook_secret == "s3"  # the secret still comes from the file
    config = parse({}, env)
    assert config.agent_secret == "from-env" and not config.uses_dev_secret
    assert config.webhook_url == "https://env.example/hook"


def test_empty_environment_values_do_not_override() -> None:
    config = parse(FULL, {AGENT_SECRET_ENV: "", WEBHOOK_URL_ENV: ""})
    assert config.agent_secret == "from-the-file"
    assert config.webhook_url == "https://desk.example/hook"


def test_the_development_secret_counts_as_no_secret() -> None:
    assert parse({}, {AGENT_SECRET_ENV: DEV_AGENT_SECRET}).uses_dev_secret


def test_load_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AGENT_SECRET_ENV, "os-env-secret")
    monkeypatch.delenv(WEBHOOK_URL_ENV, raising=False)
    assert load(tmp_path).agent_secret == "os-env-secret"


# --- the shipped file -----------------------------------------------------------------------


def test_the_shipped_handoff_yml_loads() -> None:
    config = load(REPO, {})
    assert isinstance(config, HandoffConfig)
    assert config.group_names == ["账户", "信用卡", "贷款", "投诉", "老年客户专线"]
    assert config.default_group == "账户" and config.elderly_group == "老年客户专线"
    assert config.intent_groups["complain"] == "投诉"
    assert config.entity_groups["account_type"]["credit_card"] == "信用卡"
    assert {r.name for r in config.rules} == {"loan_advice", "elderly_asks_for_person"}
    elderly = next(r for r in config.rules if r.name == "elderly_asks_for_person")
    assert elderly.min_age == 60 and elderly.group == "老年客户专线" and elderly.priority == 1
    assert config.triggers.intents == {"request_human", "complain"}
    assert config.resolutions == ("resolved", "follow_up", "transferred_offline", "no_reply")
    assert len(config.canned_replies) == 4
    loan = config.group("贷款")
    assert loan is not None and loan.hours.days == {1, 2, 3, 4, 5}
    for group in config.groups:  # every group is reachable from somewhere sensible
        assert group.hours.days and group.hours.end_minutes > 0
