"""The assembled assistant: a trained model (NLU, policies, domain) plus stores and the
custom-action executor, as configured in ``endpoints.yml`` (all optional).

Custom actions: an ``action_endpoint: {url: ...}`` in the endpoints file is called over
HTTP; without one, the project's ``actions/`` package or ``actions.py`` module runs in
this process through rasa_sdk.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bot.core.actions.custom import InProcessExecutor, RemoteExecutor
from bot.core.actions.interfaces import CustomActionExecutor
from bot.core.lock_store import LockStore, create_lock_store
from bot.core.messages import TurnResult, UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker_store import TrackerStore, create_tracker_store
from bot.domain import load_project_domain
from bot.endpoints import Endpoints, load_endpoints
from bot.errors import ConfigError, ModelNotFoundError
from bot.model import LoadedModel, load_model
from bot.privacy import PrivacyPolicy
from bot.project import Project

ACTIONS = "actions"


def actions_module(project: Project) -> str | None:
    """``actions`` when the project has an ``actions/`` package or an ``actions.py``."""
    package = project.root / ACTIONS
    if (package / "__init__.py").is_file() or (project.root / f"{ACTIONS}.py").is_file():
        return ACTIONS
    if package.is_dir() and any(package.glob("*.py")):
        return ACTIONS  # a namespace package, as rasa_sdk accepts it
    return None


def import_actions(project: Project, module: str) -> None:
    """Import the action module or package from the project folder; a syntax or import
    error is one line naming the file and line."""
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))
    try:
        imported = importlib.import_module(module)
        path = getattr(imported, "__path__", None)
        if path is not None:  # a package: its modules too, as rasa_sdk imports them
            import pkgutil

            for info in pkgutil.walk_packages(path, prefix=f"{module}."):
                importlib.import_module(info.name)
    except SyntaxError as exc:
        raise ConfigError(
            f"{exc.filename}:{exc.lineno}: {exc.msg} in the custom actions. Fix: correct the "
            "Python syntax"
        ) from exc
    except ImportError as exc:
        raise ConfigError(
            f"the custom actions ({module}) cannot be imported: {exc}. Fix: install the "
            "package they need or correct the import"
        ) from exc
    except Exception as exc:  # code run at import time failed
        raise ConfigError(f"importing the custom actions ({module}) failed: {exc!r}") from exc


def create_executor(
    project: Project, endpoints: Mapping[str, Any], domain_actions: set[str]
) -> CustomActionExecutor | None:
    endpoint = endpoints.get("action_endpoint")
    if isinstance(endpoint, dict) and endpoint.get("url"):
        return RemoteExecutor(
            str(endpoint["url"]), float(endpoint.get("timeout", 1.5)), domain_actions
        )
    module = actions_module(project)
    if module is None:
        return None
    import_actions(project, module)
    return InProcessExecutor(module)


class Agent:
    """A loaded model and the :class:`MessageProcessor` that runs its turns."""

    def __init__(self, model: LoadedModel, processor: MessageProcessor) -> None:
        self.model = model
        self.processor = processor

    @classmethod
    def load(
        cls,
        project: Project,
        model_path: Path | None = None,
        *,
        tracker_store: TrackerStore | None = None,
        lock_store: LockStore | None = None,
        executor: CustomActionExecutor | None = None,
        use_executor: bool = True,
        endpoints: Endpoints | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> Agent:
        if endpoints is None:  # the server passes those of its settings
            endpoints = load_endpoints(project)
        # checked first: encrypt without its key refuses to start before anything loads
        privacy = PrivacyPolicy.from_section(endpoints.sections.get("privacy"), os.environ)
        model = load_model(model_path or project.models_dir)
        if model.core is None:
            raise ModelNotFoundError(f"{model.path.name} has no dialogue part; run 'bot train'")
        domain = model.domain or load_project_domain(project)
        if executor is None and use_executor:
            executor = create_executor(project, endpoints.sections, set(domain.actions))
        processor = MessageProcessor(
            domain,
            model.core,
            model.nlu,
            tracker_store or create_tracker_store(endpoints.tracker_store, project.root, privacy),
            lock_store or create_lock_store(endpoints.lock_store),
            executor,
            clock=clock,
            seed=seed,
        )
        return cls(model, processor)

    async def handle_text(
        self,
        text: str,
        sender_id: str = "default",
        *,
        input_channel: str = "rest",
        metadata: dict[str, Any] | None = None,
        customer_id: str | None = None,
    ) -> list[dict[str, Any]]:
        return await self.processor.handle_message(
            UserMessage(text, sender_id, input_channel, metadata or {}, customer_id)
        )

    async def handle(self, message: UserMessage) -> TurnResult:
        return await self.processor.handle(message)
