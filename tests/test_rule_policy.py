"""Rule policy: rules with conditions, ``conversation_start``, ``wait_for_user_input``,
fallback on ``nlu_fallback``, followups, persistence."""

from __future__ import annotations

from pathlib import Path

from bot.core.messages import UserMessage
from bot.core.policies.rule import RulePolicy, rule_snippets
from bot.core.processor import MessageProcessor
from bot.core.stories import ActionStep, SlotStep, Story, UserStep
from bot.core.tracker import LISTEN

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, thank, nlu_fallback, chitchat, goodbye]
entities: [account_type]
slots:
  account_type:
    type: categorical
    values: [debit_card, credit_card]
    mappings: [{type: from_entity, entity: account_type}]
responses:
  utter_greet: [{text: 您好}]
  utter_welcome: [{text: 欢迎首次使用}]
  utter_balance: [{text: 请在App查看余额}]
  utter_credit_balance: [{text: 信用卡额度请在App查看}]
  utter_thank: [{text: 不客气}]
  utter_menu: [{text: 我可以帮您查余额}]
  utter_goodbye: [{text: 再见}]
"""

RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: utter_balance
- rule: credit card balance
  condition:
  - slot_was_set:
    - account_type: credit_card
  steps:
  - intent: query_balance
  - action: utter_credit_balance
- rule: thanks
  steps:
  - intent: thank
  - action: utter_thank
"""

RULE_ONLY = [("RulePolicy", {})]


async def say(p: MessageProcessor, text: str, sender: str = "s") -> tuple[list[str], list[str]]:
    result = await p.handle(UserMessage(text, sender))
    return [m.get("text", "") for m in result.messages], [a for a, _, _ in result.actions]


async def test_rule_predicts_its_action_then_listens(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, RULES, RULE_ONLY))
    result = await p.handle(UserMessage("/greet", "s"))
    assert result.actions == [("utter_greet", "RulePolicy", 1.0), (LISTEN, "RulePolicy", 1.0)]
    assert [m["text"] for m in result.messages] == ["您好"]
    assert await say(p, "/thank") == (["不客气"], ["utter_thank", LISTEN])


async def test_condition_on_a_slot_picks_the_more_specific_rule(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, RULES, RULE_ONLY))
    assert (await say(p, "/query_balance", "a"))[0] == ["请在App查看余额"]
    assert (await say(p, '/query_balance{"account_type": "credit_card"}', "b"))[0] == [
        "信用卡额度请在App查看"
    ]
    # the slot stays set: later questions still meet the condition
    assert (await say(p, "/query_balance", "b"))[0] == ["信用卡额度请在App查看"]
    assert (await say(p, '/query_balance{"account_type": "debit_card"}', "c"))[0] == [
        "请在App查看余额"
    ]


CONVERSATION_START = """
- rule: welcome at the start
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_welcome
"""


async def test_conversation_start_rule_applies_only_to_the_first_message(dialogue) -> None:  # type: ignore[no-untyped-def]
    # Listed after the general greet rule on purpose: the order of rules must not matter.
    for data in (
        RULES + CONVERSATION_START,
        RULES.replace("rules:\n", "rules:\n" + CONVERSATION_START.lstrip("\n"), 1),
    ):
        p = MessageProcessor(*dialogue(DOMAIN, data, RULE_ONLY))
        assert (await say(p, "/greet", "first"))[0] == ["欢迎首次使用"]
        assert (await say(p, "/greet", "first"))[0] == ["您好"]
        await say(p, "/thank", "later")
        assert (await say(p, "/greet", "later"))[0] == ["您好"]


STORY_AFTER_GREET = """
version: "3.1"
stories:
- story: greet then menu
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_menu
rules:
- rule: greet
  {extra}
  steps:
  - intent: greet
  - action: utter_greet
"""


async def test_wait_for_user_input_false_lets_a_story_continue(dialogue) -> None:  # type: ignore[no-untyped-def]
    policies = [("RulePolicy", {}), ("MemoizationPolicy", {})]
    waiting = MessageProcessor(*dialogue(DOMAIN, STORY_AFTER_GREET.format(extra=""), policies))
    assert await say(waiting, "/greet") == (["您好"], ["utter_greet", LISTEN])
    open_rule = STORY_AFTER_GREET.format(extra="wait_for_user_input: false")
    continuing = MessageProcessor(*dialogue(DOMAIN, open_rule, policies))
    texts, actions = await say(continuing, "/greet")
    assert texts == ["您好", "我可以帮您查余额"]
    assert actions == ["utter_greet", "utter_menu", LISTEN]


def test_wait_for_user_input_false_has_no_listen_snippet() -> None:
    from bot.domain import Domain

    rule = Story("r", (UserStep("greet"), ActionStep("utter_greet")), "rule")
    assert [s.actions[-1] for s in rule_snippets(rule, Domain())] == ["utter_greet", LISTEN]
    open_rule = Story("r", rule.steps, "rule", wait_for_user_input=False)
    assert [s.actions[-1] for s in rule_snippets(open_rule, Domain())] == ["utter_greet"]


def test_rule_snippets_carry_conditions() -> None:
    from bot.domain import Domain, Slot

    domain = Domain(
        slots={"account_type": Slot("account_type", "categorical", values=("credit_card",))}
    )
    rule = Story(
        "r",
        (UserStep("query_balance"), ActionStep("utter_credit_balance")),
        "rule",
        condition=(SlotStep((("account_type", "credit_card"),)),),
    )
    first = rule_snippets(rule, domain)[0]
    assert first.states[-1].slots == {"account_type": "credit_card"}
    assert first.states[-1].intent == "query_balance"
    assert first.states[-1].prev_action == LISTEN


async def test_nlu_fallback_runs_the_default_fallback_once_and_listens(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, RULES, RULE_ONLY))
    await say(p, "/greet")
    texts, actions = await say(p, "/nlu_fallback")
    assert actions == ["action_default_fallback", LISTEN]
    # the previous answer ("您好") is not repeated after the message is undone
    assert texts == ["抱歉，我没有理解您的意思，能换个说法再说一次吗？"]
    tracker = await p.get_tracker("s")
    assert tracker.latest_intent == "greet"  # the misunderstood message was undone
    assert await say(p, "/thank") == (["不客气"], ["utter_thank", LISTEN])


async def test_no_rule_for_the_first_message_gives_one_fallback(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, RULES, RULE_ONLY))
    texts, actions = await say(p, "/chitchat")
    assert actions == ["action_default_fallback", LISTEN]
    assert len(texts) == 1
    assert await say(p, "/greet") == (["您好"], ["utter_greet", LISTEN])


async def test_fallback_can_be_switched_off_and_renamed(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(
        DOMAIN,
        RULES,
        [
            (
                "RulePolicy",
                {
                    "enable_fallback_prediction": False,
                    "core_fallback_action_name": "utter_menu",
                    "core_fallback_threshold": 0.4,
                },
            )
        ],
    )
    policy = ensemble.policies[0]
    p = MessageProcessor(domain, ensemble, max_predictions=1)
    result = await p.handle(UserMessage("/nlu_fallback", "s"))
    tracker = await p.get_tracker("s")
    assert tracker.latest_action_name == LISTEN
    tracker.events = tracker.events[:-3]  # back to just after the message
    tracker._replay()
    assert tracker.latest_intent == "nlu_fallback"
    assert policy.predict(tracker, tracker.past_states(), domain) is None
    # no policy predicted anything: the ensemble's core fallback (renamed) ran
    assert ensemble.fallback == (0.4, "utter_menu")
    assert result.actions[0] == ("utter_menu", "core_fallback", 1.0)
    assert [m["text"] for m in result.messages] == ["我可以帮您查余额"]


async def test_followup_action_is_predicted_first(dialogue) -> None:  # type: ignore[no-untyped-def]
    from bot.core import events as ev

    domain, ensemble = dialogue(DOMAIN, RULES, RULE_ONLY)
    p = MessageProcessor(domain, ensemble)
    await say(p, "/greet")
    tracker = await p.get_tracker("s")
    tracker.update(ev.followup("utter_goodbye"))
    prediction = ensemble.predict(tracker, domain)
    assert (prediction.action, prediction.policy) == ("utter_goodbye", "RulePolicy")


async def test_persisted_rules_predict_the_same(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, RULES + CONVERSATION_START, RULE_ONLY)
    policy = ensemble.policies[0]
    policy.persist(tmp_path)
    loaded = RulePolicy.load(tmp_path, policy.config)
    assert len(loaded.snippets) == len(policy.snippets)
    p = MessageProcessor(domain, ensemble)
    for text in ("/greet", '/query_balance{"account_type": "credit_card"}', "/greet", "/thank"):
        await say(p, text)
        tracker = await p.get_tracker("s")
        states = tracker.past_states()
        for probe in (tracker,):
            assert loaded.predict(probe, states, domain) == policy.predict(probe, states, domain)


async def test_rule_policy_abstains_when_no_rule_matches(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, RULES, RULE_ONLY)
    p = MessageProcessor(domain, ensemble)
    await say(p, "/greet")
    tracker = await p.get_tracker("s")
    tracker.extend(
        [
            {"event": "action", "timestamp": 1.0, "name": LISTEN},
            {
                "event": "user",
                "timestamp": 1.0,
                "text": "x",
                "parse_data": {"intent": {"name": "goodbye"}, "entities": []},
            },
        ]
    )
    assert ensemble.policies[0].predict(tracker, tracker.past_states(), domain) is None
