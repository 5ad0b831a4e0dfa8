"""Rich messages on the customer's web page, in real headless Chromium against the real server
(the ``browser`` and ``server`` fixtures of test_webchat_browser.py): the balance and credit
limit drawn as a card from the response's custom payload (Rasa's ``custom``) with a 去还款
link, links in answers clickable, timestamps, the chips of an abandoned step disabled once the
customer writes, and the customer's own button presses back after a reload. Screenshots at
desktop and phone sizes go to the test's tmp folder (``pytest --basetemp DIR`` keeps them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_server_project import trained_bot
from test_webchat_browser import TIMEOUT_MS, Server, browser, server

__all__ = ["browser", "server", "trained_bot"]
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def login_as(page: Any, url: str, label: str) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/")
    page.get_by_label(label).check()
    page.get_by_role("button", name="开始咨询").click()
    expect(page.locator("#login")).to_be_hidden()


def say(page: Any, text: str) -> None:
    box = page.get_by_label("输入消息")
    box.fill(text)
    box.press("Enter")


def png(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 1000, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("size", sorted(SIZES))
def test_rich_messages(browser: Any, server: Server, tmp_path: Path, size: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login_as(page, server.url, "张伟（C1001）")
        say(page, "你好")
        greeting = page.locator(".msg-bot").filter(has_text="您好")
        expect(greeting.locator(".chip")).to_have_count(4)
        expect(greeting.locator(".msg-time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
        expect(page.locator(".msg-user").last.locator(".msg-time")).to_have_text(
            re.compile(r"^\d\d:\d\d$")
        )

        # the credit card as a card, not a sentence; the 去还款 link opens the bank's page
        say(page, "我的信用卡额度还有多少")
        card = page.get_by_test_id("account-card").last
        expect(card).to_be_visible()
        expect(card).to_contain_text("信用卡 尾号5678")
        expect(card).to_contain_text("可用额度")
        expect(card.locator(".card-main")).to_have_text("31,200.00 元")
        expect(card).to_contain_text("2026-12-05")
        repay = card.get_by_role("link", name="去还款")
        expect(repay).to_have_attribute("href", "https://www.example-bank.cn/app/repay")
        expect(repay).to_have_attribute("rel", "noopener noreferrer")
        # the card carries the sentence for screen readers (and every other channel sends it)
        expect(card).to_have_attribute("aria-label", re.compile("可用额度为 31,200.00"))
        # the greeting's chips belong to an abandoned step now
        for chip in greeting.locator(".chip").all():
            expect(chip).to_be_disabled()
        shot = tmp_path / f"webchat-card-{size}.png"
        page.screenshot(path=str(shot), full_page=True)

        # a link in an answer is clickable
        say(page, "开户要带什么材料")
        link = page.locator(".msg-bot .bubble a[href^='https://www.example-bank.cn/']").last
        expect(link).to_be_visible()
        expect(link).to_have_attribute("target", "_blank")

        # a chip pressed, then a reload: the press is in the history, as its title
        say(page, "查余额")
        choice = page.locator(".msg-bot").filter(has_text="哪一张").last
        choice.get_by_role("button").filter(has_text="尾号1234").click()
        expect(page.get_by_test_id("account-card").last).to_contain_text("52,380.50")
        page.reload()
        pressed = page.locator(".msg-user.restored").filter(has_text="尾号1234")
        expect(pressed.last).to_be_visible()  # (once per size: both sizes are C1001)
        restored = tmp_path / f"webchat-restored-{size}.png"
        page.screenshot(path=str(restored), full_page=True)
    finally:
        context.close()
    png(shot)
    png(restored)
    assert errors == []


def test_an_older_customer_is_offered_large_text(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        login_as(page, server.url, "李秀英（C1002）")  # 72
        offer = page.get_by_test_id("large-text-offer")
        expect(offer).to_be_visible()
        offer.get_by_role("button", name="开启大字模式").click()
        expect(page.locator("html")).to_have_class("large-text")
        page.screenshot(path=str(tmp_path / "webchat-large-text-offer-phone.png"), full_page=True)
    finally:
        context.close()
    younger = browser.new_context(viewport=SIZES["phone"], locale="zh-CN")
    page = younger.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        login_as(page, server.url, "张伟（C1001）")  # 35: not offered
        expect(page.get_by_test_id("welcome").last).to_be_visible()
        say(page, "你好")
        expect(page.locator(".msg-bot").filter(has_text="您好")).to_have_count(1)
        expect(page.get_by_test_id("large-text-offer")).to_have_count(0)
    finally:
        younger.close()
