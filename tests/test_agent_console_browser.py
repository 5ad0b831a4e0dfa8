"""The agent console in real headless Chromium against the real server (the fixtures of
test_handoff_browser.py): new chats announced (sound + desktop notification counter), intents,
slots and reasons in Chinese, suggestions from the conversation's topic without 0.00 noise,
resolutions without their codes, and canned replies searched with "/". The agent at desktop
size, the customer at phone size; screenshots go to the test's tmp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_handoff_browser import (
    AGENT,
    AGENT_PASSWORD,
    agent_login,
    customer_login,
    say,
    server,
    shot,
    watch,
)
from test_server_project import trained_bot
from test_webchat_browser import browser

__all__ = ["browser", "server", "trained_bot"]


def test_the_console_speaks_chinese_and_searches_canned_replies(
    browser: Any, server: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    agent_context = browser.new_context(viewport={"width": 1440, "height": 960}, locale="zh-CN")
    customer_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    agent = watch(agent_context.new_page(), errors, "agent")
    customer = watch(customer_context.new_page(), errors, "customer")
    streams: list[str] = []  # the agent's event-stream URLs (they land in access logs)
    agent.on("request", lambda r: streams.append(r.url) if "/agent/events" in r.url else None)
    try:
        agent_login(agent, server.url, AGENT, AGENT_PASSWORD)
        expect(agent.get_by_test_id("console")).to_be_visible()
        expect(agent.get_by_test_id("connection")).to_have_text("实时连接正常")
        assert any("/agent/events?ticket=" in url for url in streams), streams
        assert not any("token=" in url for url in streams), streams  # a ticket, never the token

        customer_login(customer, server.url, "王磊（C1003）")
        expect(customer.get_by_test_id("welcome")).to_contain_text("猜你想问")
        say(customer, "信用卡年费怎么收")
        expect(customer.locator(".msg-bot").filter(has_text="年费")).not_to_have_count(0)
        customer.locator("#human").click()
        expect(customer.get_by_test_id("handoff-status")).to_be_visible()

        # the new chat is announced (sound + notification when allowed; counted on the page)
        item = agent.get_by_test_id("queue-item").filter(has_text="C1003")
        expect(item).to_have_count(1)
        expect(agent.locator("body")).to_have_attribute("data-notifications", "1")
        item.get_by_test_id("accept-button").click()
        expect(agent.get_by_test_id("conversation-status")).to_have_text("服务中")

        # Chinese labels from the domain; the reason said once, the detail what the customer did
        intents = agent.get_by_test_id("context-intents")
        expect(intents).to_contain_text("业务咨询")
        expect(intents).to_contain_text("转人工客服")
        expect(intents).not_to_contain_text("request_human")
        reason = agent.get_by_test_id("context-reason")
        expect(reason).to_have_text("客户要求转人工：客户点击了“转人工”按钮")
        expect(agent.locator("#ctx-slots")).to_contain_text("客户号")
        expect(agent.locator("#ctx-slots")).not_to_contain_text("customer_id")
        expect(agent.locator("#ctx-knowledge")).not_to_contain_text("0.00")
        # suggestions from the topic (年费), not from the 转人工 button
        expect(agent.get_by_test_id("suggestion").filter(has_text="年费").first).to_be_visible()
        options = agent.get_by_test_id("close-resolution").locator("option")
        expect(options.first).to_have_text("已解决")
        expect(agent.get_by_test_id("close-resolution")).not_to_contain_text("resolved")

        # "/" searches the canned replies; Enter inserts the chosen one
        box = agent.get_by_test_id("reply-input")
        box.click()
        box.press_sequentially("/稍等")
        hits = agent.get_by_test_id("canned-search-item")
        expect(hits).to_have_count(1)
        expect(hits.first).to_contain_text("稍等")
        shots = [shot(agent, tmp_path / "agent-canned-search.png")]
        box.press("Enter")
        expect(box).to_have_value("好的，正在为您查询，请稍等片刻。")
        expect(agent.get_by_test_id("canned-search")).to_be_hidden()
        box.press("Enter")  # sends it
        expect(customer.locator(".msg-agent").filter(has_text="请稍等片刻")).to_have_count(1)
        expect(
            customer.locator(".msg-agent .msg-from").filter(has_text=f"工号 {AGENT}").first
        ).to_be_visible()
        shots.append(shot(agent, tmp_path / "agent-chinese-context.png"))
        shots.append(shot(customer, tmp_path / "customer-agent-with-id.png"))
    finally:
        agent_context.close()
        customer_context.close()
    for path in shots:
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []
