"""Custom components named by dotted path in ``config.yml`` (``my_pkg.my_module.MyComponent``).

The module is imported with the project root on ``sys.path``. The class must follow our
interface, ``bot.nlu.interfaces.Component``; one written against Rasa's own classes
(``GraphComponent``, ``create``/``process(messages)``, ``import rasa``) is refused with one
line saying what to change.
"""

from __future__ import annotations

import inspect
import sys
from importlib import import_module
from pathlib import Path

from bot.errors import ConfigError
from bot.nlu.interfaces import Component

# Project roots seen by from_config: a later lookup of the same name (loading the model,
# the training fingerprint) imports from there too.
_ROOTS: list[str] = []

INTERFACE = (
    "bot.nlu.interfaces.Component: class attributes name and defaults, "
    "train(data, messages), process(message), persist(directory), load(directory, config)"
)


def _refuse(name: str, why: str) -> ConfigError:
    return ConfigError(
        f"pipeline component '{name}': {why}; write it against {INTERFACE} "
        "(docs/nlu-pipeline.md, Custom components)"
    )


def custom_component_class(name: str, project_root: Path | None = None) -> type[Component]:
    module_name, _, class_name = name.rpartition(".")
    if project_root is not None and str(project_root) not in _ROOTS:
        _ROOTS.insert(0, str(project_root))
    for root in [*_ROOTS, str(Path.cwd())]:
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing == "rasa" or missing.startswith("rasa."):
            raise _refuse(name, "it imports rasa, which bankbot does not use") from None
        raise ConfigError(
            f"pipeline component '{name}': module '{module_name}' not found "
            f"(no module '{missing}'); put it under the project folder or fix the name"
        ) from None
    except Exception as exc:  # an error inside the user's module
        raise ConfigError(
            f"pipeline component '{name}': importing '{module_name}' failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ConfigError(
            f"pipeline component '{name}': module '{module_name}' has no class '{class_name}'"
        )
    if not issubclass(cls, Component):
        bases = {b.__name__ for b in inspect.getmro(cls)}
        if "GraphComponent" in bases:
            why = "it is a Rasa GraphComponent"
        elif hasattr(cls, "create") or _takes_messages(cls):
            why = "it has Rasa's create()/process(messages) signature"
        else:
            why = "it does not subclass bot.nlu.interfaces.Component"
        raise _refuse(name, why)
    if _takes_messages(cls):
        raise _refuse(name, "process() takes a list of messages (Rasa's signature)")
    cls.name = name  # the model's pipeline.json names it by the same dotted path
    return cls


def _takes_messages(cls: type) -> bool:
    process = getattr(cls, "process", None)
    if process is None:
        return False
    try:
        params = list(inspect.signature(process).parameters)
    except (TypeError, ValueError):
        return False
    return "messages" in params
