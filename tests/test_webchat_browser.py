"""The web chat page at ``/`` in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), against the real server (``python -m bot run``) on a trained copy of the project,
plus the development login endpoint on its own.

Skipped, with the reason, when /usr/bin/chromium is missing or Playwright cannot launch it.
Screenshots are written to the test's tmp folder (pytest prints nothing of them; look under
``pytest --basetemp DIR``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_server_project import TrainedBot, new_agent, trained_bot  # noqa: F401

from bot.channels.identity import verify_token
from bot.server import ServerSettings, create_app
from bot.server.settings import JwtSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Server:
    url: str
    root: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"the playwright package is not installed ({exc}); pip install -e '.[dev]'")
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # any launch failure means: cannot test here
        manager.stop()
        pytest.skip(f"Playwright cannot launch {CHROMIUM}: {str(exc).splitlines()[0]}")
    try:
        yield launched
    finally:
        launched.close()
        manager.stop()


@pytest.fixture(scope="module")
def server(
    trained_bot: TrainedBot,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """``python -m bot run`` on a copy of the trained project, with a freshly seeded sandbox."""
    root = tmp_path_factory.mktemp("webchat") / "bot"
    shutil.copytree(trained_bot.root, root, ignore=shutil.ignore_patterns("data"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "BOT_ENV",
            "BOT_JWT_SECRET",
            "BOT_JWT_PUBLIC_KEY",
            "BOT_DB_URL",
            "BOT_REDIS_URL",
            "BOT_PROJECT",
        }
    }
    subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "reset", "--project", str(root)],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--port", str(port), "--project", str(root)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail("the server exited:\n" + (root / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "the server did not answer /health within 90 s:\n"
                    + (root / "server.log").read_text()[-3000:]
                )
            time.sleep(0.25)
        yield Server(url, root)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_full_conversation_as_c1001(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/")
        expect(page).to_have_title("示例银行智能客服")
        human = page.get_by_role("button", name="转人工", exact=True)
        expect(human).to_be_visible()

        # development login as the sandbox customer C1001
        login = page.locator("#login")
        expect(login).to_be_visible()
        page.get_by_label("张伟（C1001）").check()
        page.get_by_role("button", name="开始咨询").click()
        expect(login).to_be_hidden()
        expect(page.locator("#identity")).to_have_text("张伟（C1001）")

        log = page.get_by_role("log")
        expect(log).to_have_attribute("aria-live", "polite")
        box = page.get_by_label("输入消息")
        box.fill("你好")
        box.press("Enter")
        greeting = page.locator(".msg-bot").filter(has_text="您好")
        expect(greeting).to_have_count(1)
        expect(greeting.locator(".chip")).to_have_count(4)
        expect(page.locator("#typing")).to_be_hidden()
        first = tmp_path / "webchat-greeting.png"
        page.screenshot(path=str(first), full_page=True)

        # a chip sends its payload; C1001 has two cards, so a choice comes back as chips
        greeting.get_by_role("button", name="查询余额").click()
        choice = page.locator(".msg-bot").filter(has_text="尾号").last
        expect(choice).to_contain_text("哪一张")
        card = choice.get_by_role("button").filter(has_text="尾号1234")
        expect(card).to_have_count(1)
        card.click()
        balance = page.locator(".msg-bot").filter(has_text="52,380.50")
        expect(balance).to_have_count(1)
        expect(balance).to_contain_text("尾号1234")
        expect(page.locator(".msg-user").last).to_contain_text("尾号1234")

        # large-text mode, kept across a reload (the login too, for this tab)
        small = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        large_toggle = page.get_by_role("button", name="大字模式")
        large_toggle.click()
        expect(large_toggle).to_have_attribute("aria-pressed", "true")
        expect(page.locator("html")).to_have_class("large-text")
        large = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        assert large > small
        second = tmp_path / "webchat-large-text.png"
        page.screenshot(path=str(second), full_page=True)
        page.reload()
        expect(page.locator("html")).to_have_class("large-text")
        expect(page.get_by_role("button", name="大字模式")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("#identity")).to_have_text("张伟（C1001）")
        expect(page.locator("#login")).to_be_hidden()

        # network loss: the message waits in the queue under a banner, then goes out
        context.set_offline(True)
        box = page.get_by_label("输入消息")
        box.fill("谢谢")
        box.press("Enter")
        banner = page.locator("#banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("网络")
        expect(page.locator(".msg-user").last).to_have_class("msg msg-user pending")
        third = tmp_path / "webchat-offline.png"
        page.screenshot(path=str(third), full_page=True)
        context.set_offline(False)
        expect(page.locator(".msg-bot").filter(has_text="不客气")).to_have_count(1)
        expect(page.locator(".msg-user").last).not_to_have_class("msg msg-user pending")

        # the always-visible 转人工 button sends /request_human
        bots = page.locator(".msg-bot").count()
        page.get_by_role("button", name="转人工", exact=True).click()
        # the handoff's answer and the queue notice (docs/handoff.md), each shown once
        expect(page.locator(".msg-bot")).to_have_count(bots + 2)
        expect(page.locator(".msg-bot").last).to_contain_text("人工服务队列")
        # the message and its time (HH:MM)
        expect(page.locator(".msg-user").last).to_have_text(re.compile(r"^我：转人工\d\d:\d\d$"))
    finally:
        context.close()

    for shot in (first, second, third):
        assert shot.exists() and shot.stat().st_size > 1000, shot
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []


def test_anonymous_visitor_uses_rest_with_a_stored_sender(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)
    try:
        page.goto(server.url + "/")
        page.get_by_label("匿名访客").check()
        page.get_by_role("button", name="开始咨询").click()
        expect(page.locator("#identity")).to_have_text("匿名访客")
        box = page.get_by_label("输入消息")
        box.fill("你好")
        box.press("Enter")
        expect(page.locator(".msg-bot").filter(has_text="您好")).to_have_count(1)
        sender = page.evaluate("localStorage.getItem('bankbot.sender')")
        assert sender and sender.startswith("web-")
        assert any(url.endswith("/webhooks/rest/webhook") for url in requests)
        assert not any("/webhooks/app/" in url for url in requests)
    finally:
        context.close()


def test_dev_login_issues_tokens_for_sandbox_customers_only(server: Server) -> None:
    status, body = http_json(server.url + "/dev/login")
    assert status == 200
    assert [c["id"] for c in body["customers"]] == ["C1001", "C1002", "C1003"]
    status, body = http_json(server.url + "/dev/login", {"customer_id": "C1002"})
    assert status == 200 and body["name"] == "李秀英"
    assert verify_token(body["token"], JwtSettings()).customer_id == "C1002"
    status, body = http_json(server.url + "/dev/login", {"customer_id": "C9999"})
    assert status == 400 and "C1001" in body["error"]
    status, page = 0, b""
    with urllib.request.urlopen(server.url + "/", timeout=10) as response:
        status, page = response.status, response.read()
    assert status == 200 and "转人工".encode() in page
    with urllib.request.urlopen(server.url + "/static/chat.js", timeout=10) as response:
        assert response.status == 200


def test_dev_login_is_disabled_in_production(trained_bot: TrainedBot) -> None:  # noqa: F811
    settings = ServerSettings(production=True, jwt=JwtSettings(secret="s" * 40))
    app = create_app(new_agent(trained_bot), settings, close_stores=False)

    async def requests() -> list[Any]:
        _, listing = await app.asgi_client.get("/dev/login")
        _, login = await app.asgi_client.post("/dev/login", json={"customer_id": "C1001"})
        _, index = await app.asgi_client.get("/")
        return [listing, login, index]

    # In a thread of its own: sync Playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        listing, login, index = pool.submit(asyncio.run, requests()).result(timeout=60)
    assert listing.status == 404
    assert "BOT_ENV=production" in listing.json["error"]
    assert login.status == 404
    assert index.status == 200  # the page itself is still served (anonymous use)
