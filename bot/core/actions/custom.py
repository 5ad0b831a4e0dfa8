"""Custom actions written with ``rasa_sdk``: run in-process through its ``ActionExecutor``
(the default) or on an action server over the Rasa protocol (``action_endpoint``)."""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.core import events as ev
from bot.core.actions.interfaces import Action, ActionContext, CustomActionExecutor
from bot.core.actions.responses import choose_variation, render
from bot.core.events import Event
from bot.core.tracker import DialogueStateTracker
from bot.errors import BotError

logger = logging.getLogger(__name__)


class ActionExecutionError(BotError):
    """A custom action failed, timed out or its server could not be reached."""


class ActionRejected(BotError):
    """The action refused to run (rasa_sdk's ``ActionExecutionRejection``)."""


def _module_of(run: Any) -> str:
    """The module of the action class behind a registered ``run`` (bound method)."""
    owner = getattr(run, "__self__", None)
    return str(type(owner).__module__ if owner is not None else getattr(run, "__module__", ""))


class InProcessExecutor:
    """Runs the actions of a Python package (default ``actions``) inside this process."""

    def __init__(self, package: str = "actions") -> None:
        try:
            from rasa_sdk.executor import ActionExecutor
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ImportError("custom actions need rasa_sdk: pip install rasa-sdk") from exc
        self._executor = ActionExecutor()
        self._executor.register_package(package)
        # rasa_sdk registers every Action subclass imported in the process; only this
        # package's own actions belong to this executor.
        self._names = {
            name
            for name, run in self._executor.actions.items()
            if _module_of(run).split(".")[0] == package.split(".")[0]
        }

    def names(self) -> set[str]:
        return set(self._names)

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        from rasa_sdk.interfaces import ActionExecutionRejection

        if name not in self._names:
            raise ActionExecutionError(f"custom action {name} is not in this action package")
        call = {
            "next_action": name,
            "sender_id": tracker["sender_id"],
            "tracker": tracker,
            "domain": domain,
            "version": "3.21",
        }
        try:
            result = await self._executor.run(call)
        except ActionExecutionRejection as exc:
            raise ActionRejected(f"{name} rejected execution: {exc}") from exc
        except Exception as exc:
            raise ActionExecutionError(f"custom action {name} failed: {exc!r}") from exc
        if result is None:
            return {"events": [], "responses": []}
        return {"events": result.events, "responses": result.responses}


class RemoteExecutor:
    """Calls an action server (``POST {url}/webhook``) such as ``bot run actions``."""

    def __init__(self, url: str, timeout: float = 1.5, names: set[str] | None = None) -> None:
        self.url = url if url.rstrip("/").endswith("/webhook") else url.rstrip("/") + "/webhook"
        self.timeout = timeout
        self._names = names or set()
        self._client: Any = None
        self._client_loop: Any = None

    def _http(self) -> Any:
        """One keep-alive client per event loop (connections are reused between turns)."""
        import asyncio

        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._client_loop = loop
        return self._client

    def names(self) -> set[str]:
        return self._names

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        import httpx

        call = {
            "next_action": name,
            "sender_id": tracker["sender_id"],
            "tracker": tracker,
            "domain": domain,
            "version": "3.21",
        }
        try:
            response = await self._http().post(self.url, json=call)
        except httpx.HTTPError as exc:
            raise ActionExecutionError(
                f"action server {self.url} did not answer for {name}: {exc!r}"
            ) from exc
        if response.status_code == 400:
            raise ActionRejected(f"{name} rejected execution: {response.text[:200]}")
        if response.status_code != 200:
            raise ActionExecutionError(
                f"action server answered {response.status_code} for {name}: {response.text[:200]}"
            )
        data: dict[str, Any] = response.json()
        return data


def _response_events(
    responses: list[dict[str, Any]], context: ActionContext, slots: dict[str, Any]
) -> list[Event]:
    """The bot events of an action's messages: ``response=`` renders the domain's response
    (the message's other keys fill its templates, its ``buttons`` come after the response's
    own, as in Rasa); otherwise the message's text and data as they are."""
    out: list[Event] = []
    for message in responses:
        name = message.get("response") or message.get("template")
        variations = context.domain.variations(name) if name else None
        if name and variations:
            variation = choose_variation(variations, context.channel, context.rng, slots)
            if variation is None:
                continue
            extra = {k: v for k, v in message.items() if k not in ("response", "template")}
            event = render(variation, {**slots, **extra}, name)
            if message.get("buttons"):  # as Rasa: after the response's own buttons
                data = event.setdefault("data", {})
                data["buttons"] = [*(data.get("buttons") or []), *message["buttons"]]
            _add_metadata(event, message)
            out.append(event)
            continue
        data = {
            k: message[k]
            for k in ("buttons", "image", "custom", "attachment", "elements")
            if message.get(k)
        }
        if message.get("json_message"):
            data["custom"] = message["json_message"]
        if message.get("text") or data:
            out.append(_add_metadata(ev.bot(message.get("text"), data), message))
    return out


def _add_metadata(event: Event, message: dict[str, Any]) -> Event:
    """An action's ``metadata={...}`` on a message travels on the bot event (what the
    analytics read, e.g. ``kb_entry``: docs/analytics.md)."""
    extra = message.get("metadata")
    if isinstance(extra, dict) and extra:
        event["metadata"] = {**(event.get("metadata") or {}), **extra}
    return event


async def run_custom_action(
    name: str,
    tracker: DialogueStateTracker,
    context: ActionContext,
    pending: list[Event] | None = None,
) -> list[Event]:
    """Run ``name``; ``pending`` events are appended to the tracker it receives."""
    if context.executor is None:
        raise ActionExecutionError(f"no action executor is configured to run {name}")
    if pending:
        # The action sees the state with the pending events applied (an activated loop,
        # requested_slot, candidate slots), as Rasa's temporary tracker.
        tracker = DialogueStateTracker.from_events(
            tracker.sender_id, [*tracker.events, *pending], tracker.domain
        )
    state = tracker.current_state()
    result = await context.executor.run(name, state, context.domain.as_rasa_dict())
    events: list[Event] = []
    for event in result.get("events") or []:
        if isinstance(event, dict) and "event" in event:
            event = dict(event)
            if event.get("timestamp") is None:
                event["timestamp"] = time.time()
            events.append(event)
    return [*_response_events(result.get("responses") or [], context, state["slots"]), *events]


class CustomAction(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return await run_custom_action(self.name, tracker, context)


def executor_for(names: set[str], executor: CustomActionExecutor | None) -> bool:
    return executor is not None and bool(names & executor.names())
