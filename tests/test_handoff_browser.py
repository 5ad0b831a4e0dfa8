"""Human handoff end to end in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) against the real server (``python -m bot run``) on a trained copy of the project:
the customer's web page (``/``) and the agent console (``/agent``) side by side.

An agent account is made with the CLI (``python -m bot agents add``) in the server's database
before the server starts. Skipped, with the reason, when /usr/bin/chromium is missing or
Playwright cannot launch it (the ``browser`` fixture of test_webchat_browser.py). Screenshots go
to the test's tmp folder (``pytest --basetemp DIR`` keeps them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_server_project import REPO, TrainedBot, trained_bot
from test_webchat_browser import TIMEOUT_MS, browser, free_port

__all__ = ["browser", "trained_bot"]
AGENT = "alice"
AGENT_PASSWORD = "alice-handoff-2026"
SUPERVISOR = "boss"
SUPERVISOR_PASSWORD = "boss-handoff-2026"
ALL_GROUPS = "账户,信用卡,贷款,投诉,老年客户专线"
REPLY = "您好，我是客服小王"
QUEUE_LINE = re.compile(r"您前面还有\d+位客户，预计等待约\d+分钟")


@dataclass(frozen=True)
class Server:
    url: str
    root: Path


def bot_cli(root: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args, "--project", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"bot {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def http(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``python -m bot run`` on a copy of the trained project with the shipped handoff.yml
    (every group open around the clock, so the test does not depend on the time of day), a
    fresh sandbox and two accounts made with ``bot agents add``."""
    root = tmp_path_factory.mktemp("handoff") / "bot"
    shutil.copytree(trained_bot.root, root, ignore=shutil.ignore_patterns("data"))
    config = yaml.safe_load((REPO / "handoff.yml").read_text(encoding="utf-8"))
    for group in config["groups"]:
        group["hours"] = {"time": "00:00-24:00"}
    (root / "handoff.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
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
            "BOT_HANDOFF_DB",
            "BOT_AGENT_SECRET",
            "BOT_AGENT_PASSWORD",
            "BOT_HANDOFF_WEBHOOK",
        }
    }
    bot_cli(root, env, "sandbox", "reset")
    added = bot_cli(
        root, env, "agents", "add", AGENT, "--password", AGENT_PASSWORD, "--groups", ALL_GROUPS
    )
    assert AGENT in added
    bot_cli(
        root,
        env,
        "agents",
        "add",
        SUPERVISOR,
        "--password",
        SUPERVISOR_PASSWORD,
        "--groups",
        "投诉",
        "--role",
        "supervisor",
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


def watch(page: Any, errors: list[str], name: str) -> Any:
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
    return page


def customer_login(page: Any, url: str, label: str) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/")
    page.get_by_label(label).check()
    page.get_by_role("button", name="开始咨询").click()
    expect(page.locator("#login")).to_be_hidden()


def say(page: Any, text: str) -> None:
    box = page.get_by_label("输入消息")
    box.fill(text)
    box.press("Enter")


def agent_login(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/agent")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_test_id("login-submit").click()


def shot(page: Any, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    return path


def test_customer_and_agent_through_a_handoff(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    shots: list[Path] = []
    customer_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    agent_context = browser.new_context(viewport={"width": 1440, "height": 960}, locale="zh-CN")
    customer = watch(customer_context.new_page(), errors, "customer")
    agent = watch(agent_context.new_page(), errors, "agent")
    posted: list[dict[str, Any]] = []
    customer.on(
        "request",
        lambda r: (
            posted.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/webhooks/app/webhook")
            else None
        ),
    )
    try:
        # the customer (C1001) greets the bot, then asks for a person
        customer_login(customer, server.url, "张伟（C1001）")
        say(customer, "你好")
        expect(customer.locator(".msg-bot").filter(has_text="您好")).to_have_count(1)
        customer.locator("#human").click()  # the always-visible 转人工 (the greeting has one too)
        status = customer.get_by_test_id("handoff-status")
        expect(status).to_be_visible()
        expect(status).to_have_text(QUEUE_LINE)
        expect(customer.locator(".msg-bot").filter(has_text="人工服务队列")).to_have_count(1)
        shots.append(shot(customer, tmp_path / "customer-queued.png"))

        # the agent logs in and finds the conversation in the queue
        agent_login(agent, server.url, AGENT, AGENT_PASSWORD)
        expect(agent.get_by_test_id("console")).to_be_visible()
        expect(agent.get_by_test_id("agent-name")).to_contain_text(AGENT)
        expect(agent.get_by_test_id("connection")).to_have_text("实时连接正常")
        item = agent.get_by_test_id("queue-item").filter(has_text="C1001")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("客户要求转人工")
        expect(item).to_contain_text("已等待")
        shots.append(shot(agent, tmp_path / "agent-queue.png"))
        item.get_by_test_id("accept-button").click()

        # the context packet: who, why, what was said, and the bot's answer suggestions
        expect(agent.get_by_test_id("conversation-status")).to_have_text("服务中")
        expect(agent.get_by_test_id("context-reason")).to_contain_text("客户要求转人工")
        expect(agent.get_by_test_id("context-customer")).to_contain_text("张*（C1001）")
        expect(agent.get_by_test_id("context-channel")).to_contain_text("App")
        expect(agent.get_by_test_id("context-intents")).to_contain_text("转人工客服")  # the label
        transcript = agent.get_by_test_id("transcript")
        expect(transcript).to_contain_text("你好")
        expect(transcript).to_contain_text("〔按钮〕转人工")
        expect(transcript).to_contain_text("人工客服已接入")
        expect(agent.get_by_test_id("mine-item").filter(has_text="C1001")).to_have_count(1)
        expect(agent.get_by_test_id("queue-item")).to_have_count(0)
        expect(agent.get_by_test_id("canned-reply")).to_have_count(4)

        # the customer sees that a person has joined (status line and a marked message)
        expect(status).to_have_text("人工客服已接入")
        joined = customer.locator(".msg-agent").filter(has_text="人工客服已接入")
        expect(joined).to_have_count(1)

        # the agent replies; the customer gets it live, marked as from 人工客服
        agent.get_by_test_id("reply-input").fill(REPLY)
        agent.get_by_test_id("reply-send").click()
        expect(
            transcript.get_by_test_id("transcript-message").filter(has_text=REPLY)
        ).to_have_count(1)
        reply = customer.locator(".msg-agent").filter(has_text=REPLY)
        expect(reply).to_have_count(1)
        expect(reply.locator(".msg-from")).to_have_text(f"人工客服（工号 {AGENT}）")
        expect(reply.locator(".msg-from")).to_be_visible()

        # the customer writes; the agent sees it live and knowledge suggestions follow it
        say(customer, "信用卡年费怎么收")
        expect(
            transcript.get_by_test_id("transcript-message").filter(has_text="信用卡年费怎么收")
        ).to_have_count(1)
        suggestion = agent.get_by_test_id("suggestion").filter(has_text="年费").first
        expect(suggestion).to_be_visible()
        # a canned reply goes into the box with one click; a private note stays private
        agent.get_by_test_id("canned-reply").filter(has_text="稍等").click()
        expect(agent.get_by_test_id("reply-input")).to_have_value(
            "好的，正在为您查询，请稍等片刻。"
        )
        agent.get_by_test_id("reply-send").click()
        expect(customer.locator(".msg-agent").filter(has_text="正在为您查询")).to_have_count(1)
        # the customer's stream breaks while the agent writes: the page catches up on reconnect
        customer.route("**/webhooks/app/events*", lambda route: route.abort())
        customer.evaluate("window.bankbotChat.state.stream.onerror()")
        agent.get_by_test_id("reply-input").fill("年费可以用刷卡次数减免")
        agent.get_by_test_id("reply-send").click()
        expect(
            transcript.get_by_test_id("transcript-message").filter(has_text="刷卡次数减免")
        ).to_have_count(1)
        customer.unroute("**/webhooks/app/events*")
        customer.evaluate("window.bankbotChat.connectStream()")
        expect(customer.locator(".msg-agent").filter(has_text="刷卡次数减免")).to_have_count(1)
        agent.get_by_test_id("note-input").fill("客户关心年费减免")
        agent.get_by_test_id("note-save").click()
        expect(agent.get_by_test_id("note").filter(has_text="客户关心年费减免")).to_have_count(1)
        shots.append(shot(agent, tmp_path / "agent-conversation.png"))
        shots.append(shot(customer, tmp_path / "customer-with-agent.png"))

        # the agent closes with a resolution; the customer is asked for a rating
        agent.get_by_test_id("close-resolution").select_option("resolved")
        agent.get_by_test_id("close-button").click()
        expect(agent.get_by_test_id("conversation-status")).to_have_text("已结束")
        expect(agent.get_by_test_id("mine-item")).to_have_count(0)
        expect(agent.get_by_test_id("reply-input")).to_be_disabled()
        rating = customer.locator(".msg-bot").filter(has_text="请为本次服务打分")
        expect(rating).to_have_count(1)
        expect(rating.locator(".chip")).to_have_count(5)
        expect(status).not_to_have_text("人工客服已接入")
        shots.append(shot(customer, tmp_path / "customer-rating.png"))
        rating.get_by_role("button", name="5分").click()
        expect(customer.locator(".msg-bot").filter(has_text="感谢您的评价")).to_have_count(1)

        # the bot answers again
        bots = customer.locator(".msg-bot").count()
        say(customer, "开户要带什么材料")
        expect(customer.locator(".msg-bot")).to_have_count(bots + 1)
        expect(customer.locator(".msg-bot").last).to_contain_text("身份证")
        shots.append(shot(customer, tmp_path / "customer-bot-again.png"))
        assert "客户关心年费减免" not in customer.locator("#messages").inner_text()

        # a reload shows the conversation again (history), the agent's messages still marked
        customer.reload()
        expect(customer.locator("#identity")).to_have_text("张伟（C1001）")
        expect(customer.locator(".msg-agent").filter(has_text=REPLY)).to_have_count(1)
        expect(customer.locator(".msg-bot").last).to_contain_text("身份证")
        expect(customer.locator(".msg-user").filter(has_text="信用卡年费怎么收")).to_have_count(1)
        expect(customer.get_by_test_id("handoff-status")).to_be_hidden()
    finally:
        customer_context.close()
        agent_context.close()

    for path in shots:
        assert path.exists() and path.stat().st_size > 1000, path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every message went out with its own idempotency key
    ids = [body["metadata"]["message_id"] for body in posted]
    assert len(ids) >= 5 and len(set(ids)) == len(ids)
    assert errors == []


def test_a_message_retried_after_a_lost_answer_is_processed_once(
    browser: Any, server: Server
) -> None:
    """The first POST reaches the server but its answer is lost (the browser sees a network
    error); the page retries with the same message_id and the server does not run it again."""
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(locale="zh-CN")
    page = watch(context.new_page(), errors, "customer")
    bodies: list[dict[str, Any]] = []

    def lose_the_first_answer(route: Any) -> None:
        bodies.append(route.request.post_data_json)
        if len(bodies) == 1:
            route.fetch()  # processed by the server …
            route.abort("connectionreset")  # … but the page never hears back
        else:
            route.continue_()

    try:
        customer_login(page, server.url, "王磊（C1003）")
        page.route("**/webhooks/app/webhook", lose_the_first_answer)
        say(page, "你好")
        expect(page.locator(".msg-bot").filter(has_text="您好")).to_have_count(1)
        expect(page.locator(".msg-user").last).not_to_have_class(re.compile("pending|failed"))
        token = json.loads(page.evaluate("sessionStorage.getItem('bankbot.login')"))["token"]
    finally:
        context.close()
    assert len(bodies) == 2
    assert bodies[0]["metadata"]["message_id"] == bodies[1]["metadata"]["message_id"]
    status, history = http(
        server.url + "/webhooks/app/history", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    said = [m["text"] for m in history["messages"] if m["from"] == "customer"]
    assert said.count("你好") == 1, said
    assert errors == []


def test_anonymous_reload_continues_the_conversation(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(locale="zh-CN")
    page = watch(context.new_page(), errors, "visitor")
    try:
        customer_login(page, server.url, "匿名访客")
        say(page, "开户要带什么材料")
        expect(page.locator(".msg-bot").filter(has_text="身份证")).to_have_count(1)
        sender = page.evaluate("sessionStorage.getItem('bankbot.sender')")
        assert sender and sender.startswith("web-")
        page.reload()
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#identity")).to_have_text("匿名访客")
        expect(page.locator(".msg-user").filter(has_text="开户要带什么材料")).to_have_count(1)
        expect(page.locator(".msg-bot").filter(has_text="身份证")).to_have_count(1)
        assert page.evaluate("sessionStorage.getItem('bankbot.sender')") == sender
        say(page, "谢谢")
        expect(page.locator(".msg-bot").filter(has_text="不客气")).to_have_count(1)
    finally:
        context.close()
    status, history = http(server.url + f"/webhooks/app/history?sender={sender}")
    assert status == 200
    said = [m["text"] for m in history["messages"] if m["from"] == "customer"]
    assert said == ["开户要带什么材料", "谢谢"]
    assert errors == []


def test_wrong_password_and_missing_token(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(locale="zh-CN")
    page = watch(context.new_page(), errors, "agent")
    try:
        agent_login(page, server.url, AGENT, "not-the-password")
        error = page.get_by_test_id("login-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("用户名或密码错误")
        expect(page.get_by_test_id("console")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('bankbot.agent')") is None
        shot(page, tmp_path / "agent-wrong-password.png")
    finally:
        context.close()
    status, body = http(server.url + "/agent/queue")
    assert status == 401 and body["status"] == 401 and body["error"]
    status, body = http(server.url + "/agent/queue", headers={"Authorization": "Bearer nonsense"})
    assert status == 401
    assert errors == []


def test_supervisor_sees_every_queue_and_the_agents_load(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1440, "height": 960}, locale="zh-CN")
    page = watch(context.new_page(), errors, "supervisor")
    try:
        agent_login(page, server.url, SUPERVISOR, SUPERVISOR_PASSWORD)
        panel = page.get_by_test_id("supervisor-panel")
        expect(panel).to_be_visible()
        expect(page.get_by_test_id("agent-name")).to_contain_text("班长")
        groups = page.get_by_test_id("supervisor-group")
        expect(groups).to_have_count(5)
        expect(groups.first).to_contain_text("账户")
        agents = page.get_by_test_id("supervisor-agent")
        expect(agents.filter(has_text=AGENT)).to_have_count(1)
        expect(agents.filter(has_text=SUPERVISOR)).to_contain_text("在线")
        # going away shows in the supervisor's own table on the next refresh
        page.get_by_test_id("agent-status").select_option("away")
        expect(agents.filter(has_text=SUPERVISOR)).to_contain_text("离开", timeout=15_000)
        shot(page, tmp_path / "agent-supervisor.png")
        # a reload keeps the login (sessionStorage), logging out forgets it
        page.reload()
        expect(page.get_by_test_id("supervisor-panel")).to_be_visible()
        page.get_by_test_id("logout").click()
        expect(page.get_by_test_id("login-form")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('bankbot.agent')") is None
    finally:
        context.close()
    assert errors == []
