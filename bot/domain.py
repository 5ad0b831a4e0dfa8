"""Reads the domain (Rasa 3.x): intents, entities, slots with mappings, responses,
actions, forms and session configuration.

The domain is ``domain.yml`` or a ``domain/`` folder of YAML files merged as Rasa merges
them: lists (intents, entities, actions) are joined, mappings (slots, responses, forms)
are joined too, and a name defined in two files is an error naming both. ``responses:``
of the training data files join the same way. Retrieval intents (Rasa's ResponseSelector):
responses named ``utter_<intent>/<key>`` make ``<intent>`` a retrieval intent whose action
``utter_<intent>`` answers with one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from bot.builtin_responses import builtin_responses
from bot.errors import ConfigError
from bot.project import Project, yaml_error, yaml_files

DEFAULT_ACTIONS: tuple[str, ...] = (
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_back",
    "action_extract_slots",
)
INTENT_OPTIONS = frozenset({"use_entities", "ignore_entities", "is_retrieval_intent"})
RETRIEVAL_DELIMITER = "/"
SLOT_TYPES = ("text", "bool", "float", "categorical", "list", "any")
MAPPING_TYPES = ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom")
REQUESTED_SLOT = "requested_slot"
SESSION_START_METADATA_SLOT = "session_started_metadata"


@dataclass(frozen=True)
class SlotMapping:
    type: str
    entity: str | None = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()
    value: Any = None
    role: str | None = None
    group: str | None = None
    # ``conditions: [{active_loop: form, requested_slot: slot}]``
    conditions: tuple[tuple[str | None, str | None], ...] = ()
    action: str | None = None


@dataclass(frozen=True)
class Slot:
    name: str
    type: str
    mappings: tuple[SlotMapping, ...] = ()
    initial_value: Any = None
    influence_conversation: bool = True
    values: tuple[str, ...] = ()  # categorical
    min_value: float = 0.0
    max_value: float = 1.0

    def coerce(self, value: Any) -> Any:
        """The value as the slot type stores it."""
        if value is None:
            return None
        if self.type == "bool":
            if isinstance(value, str):
                return value.strip().lower() in {"true", "1", "yes", "是", "对"}
            return bool(value)
        if self.type == "float":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
        if self.type == "list":
            return value if isinstance(value, list) else [value]
        if self.type == "text":
            return value if isinstance(value, str) else str(value)
        return value


@dataclass(frozen=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ignored_intents: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionConfig:
    expiration_minutes: float = 60.0
    carry_over_slots: bool = True


@dataclass(frozen=True)
class Domain:
    intents: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    forms: dict[str, Form] = field(default_factory=dict)
    session_config: SessionConfig = field(default_factory=SessionConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    # Intents answered by a response selector: from ``utter_<intent>/<key>`` response names
    # and ``- intent: {is_retrieval_intent: true}``.
    retrieval_intents: frozenset[str] = frozenset()
    # ``- intent: {use_entities: [...], ignore_entities: [...]}`` as written.
    intent_properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def variations(self, name: str) -> list[dict[str, Any]] | None:
        """The response ``name``: the project's own, else the built-in one
        (:mod:`bot.builtin_responses`), else None."""
        own = self.responses.get(name)
        if own:
            return own
        return builtin_responses().get(name)

    @property
    def action_names(self) -> list[str]:
        """Every action the policies may predict, in a fixed order: the ``utter_<intent>``
        and ``respond_<intent>`` of each retrieval intent stand for its sub-responses."""
        names: list[str] = list(DEFAULT_ACTIONS)
        responses = [r for r in self.responses if RETRIEVAL_DELIMITER not in r]
        retrieval = [
            f"{prefix}_{intent}"
            for intent in sorted(self.retrieval_intents)
            for prefix in ("utter", "respond")
        ]
        for name in (*responses, *retrieval, *self.actions, *self.forms):
            if name not in names:
                names.append(name)
        return names

    def retrieval_intent_of(self, action: str) -> str | None:
        """``chitchat`` for ``utter_chitchat`` or ``respond_chitchat`` when ``chitchat`` is a
        retrieval intent, else ``None``."""
        for prefix in ("utter_", "respond_"):
            if action.startswith(prefix) and action[len(prefix) :] in self.retrieval_intents:
                return action[len(prefix) :]
        return None

    def retrieval_responses(self, intent: str) -> dict[str, list[dict[str, Any]]]:
        """The responses of retrieval intent ``intent``, keyed by their full names
        (``utter_chitchat/ask_name``), as ``responses`` holds them."""
        prefix = f"utter_{intent}{RETRIEVAL_DELIMITER}"
        return {k: v for k, v in self.responses.items() if k.startswith(prefix)}

    def as_rasa_dict(self) -> dict[str, Any]:
        """The domain as Rasa sends it to an action server: built once per domain (it is on
        every custom action call) and shared, so treat it as read-only."""
        return self._rasa_dict

    @cached_property
    def _rasa_dict(self) -> dict[str, Any]:
        return {
            "version": "3.1",
            "intents": list(self.intents),
            "entities": list(self.entities),
            "slots": {
                name: {
                    "type": slot.type,
                    "initial_value": slot.initial_value,
                    "influence_conversation": slot.influence_conversation,
                    **({"values": list(slot.values)} if slot.values else {}),
                    "mappings": [_mapping_dict(m) for m in slot.mappings],
                }
                for name, slot in self.slots.items()
            },
            "responses": self.responses,
            "actions": list(self.actions),
            "forms": {
                name: {"required_slots": list(form.required_slots)}
                for name, form in self.forms.items()
            },
            "session_config": {
                "session_expiration_time": self.session_config.expiration_minutes,
                "carry_over_slots_to_new_session": self.session_config.carry_over_slots,
            },
        }


def _mapping_dict(m: SlotMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"type": m.type}
    if m.entity:
        out["entity"] = m.entity
    if m.intent:
        out["intent"] = list(m.intent)
    if m.not_intent:
        out["not_intent"] = list(m.not_intent)
    if m.value is not None:
        out["value"] = m.value
    if m.conditions:
        out["conditions"] = [
            {k: v for k, v in (("active_loop", a), ("requested_slot", r)) if v is not None}
            for a, r in m.conditions
        ]
    return out


def _intents(items: Any, path: Path) -> tuple[tuple[str, ...], dict[str, dict[str, Any]], set[str]]:
    """Names, ``use_entities``/``ignore_entities`` properties and retrieval intents."""
    names = _names(items, "intents", path)
    properties: dict[str, dict[str, Any]] = {}
    retrieval: set[str] = set()
    for item in items or []:
        if not isinstance(item, dict):
            continue
        ((name, options),) = item.items()
        options = options or {}
        if not isinstance(options, dict) or set(options) - INTENT_OPTIONS:
            raise ConfigError(
                f"{path}: intent '{name}' has options {options!r}. Fix: write '- {name}:' "
                f"with some of {', '.join(sorted(INTENT_OPTIONS))}"
            )
        if options.get("is_retrieval_intent"):
            retrieval.add(str(name))
        rest = {k: v for k, v in options.items() if k != "is_retrieval_intent"}
        if rest:
            properties[str(name)] = rest
    return names, properties, retrieval


def _names(items: Any, key: str, path: Path) -> tuple[str, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{path}: '{key}' must be a list")
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and len(item) == 1:
            names.append(str(next(iter(item))))  # `- intent_name: {use_entities: ...}`
        else:
            raise ConfigError(f"{path}: cannot read {key} entry {item!r}; write '- name'")
    return tuple(names)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _mapping(raw: Any, slot: str, path: Path) -> SlotMapping:
    if not isinstance(raw, dict) or raw.get("type") not in MAPPING_TYPES:
        raise ConfigError(
            f"{path}: slot '{slot}' has a mapping {raw!r}; 'type' must be one of "
            f"{', '.join(MAPPING_TYPES)}"
        )
    if raw["type"] == "from_entity" and not raw.get("entity"):
        raise ConfigError(f"{path}: slot '{slot}': a from_entity mapping needs 'entity'")
    conditions = []
    conditions_raw = raw.get("conditions") or []
    if not isinstance(conditions_raw, list):
        raise ConfigError(f"{path}: slot '{slot}': conditions are '- active_loop: form'")
    for cond in conditions_raw:
        if not isinstance(cond, dict):
            raise ConfigError(f"{path}: slot '{slot}': conditions are '- active_loop: form'")
        conditions.append((cond.get("active_loop"), cond.get("requested_slot")))
    return SlotMapping(
        type=raw["type"],
        entity=raw.get("entity"),
        intent=_as_tuple(raw.get("intent")),
        not_intent=_as_tuple(raw.get("not_intent")),
        value=raw.get("value"),
        role=raw.get("role"),
        group=raw.get("group"),
        conditions=tuple(conditions),
        action=raw.get("action"),
    )


def _number(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: {what} is {value!r}. Fix: write a number such as 60")
    return float(value)


def _slots(raw: Any, path: Path) -> dict[str, Slot]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'slots' must be a mapping of slot name → definition")
    slots = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or spec.get("type") not in SLOT_TYPES:
            raise ConfigError(
                f"{path}: slot '{name}' needs 'type' as one of {', '.join(SLOT_TYPES)}"
            )
        values = tuple(str(v) for v in spec.get("values") or ())
        if spec["type"] == "categorical" and not values:
            raise ConfigError(f"{path}: categorical slot '{name}' needs 'values'")
        raw_mappings = spec.get("mappings") or []
        if not isinstance(raw_mappings, list):
            raise ConfigError(
                f"{path}: slot '{name}': 'mappings' must be a list such as "
                "'- type: from_entity' with 'entity: name'"
            )
        mappings = tuple(_mapping(m, name, path) for m in raw_mappings)
        slots[name] = Slot(
            name=name,
            type=spec["type"],
            mappings=mappings,
            initial_value=spec.get("initial_value"),
            influence_conversation=bool(spec.get("influence_conversation", spec["type"] != "any")),
            values=values,
            min_value=_number(spec.get("min_value", 0.0), f"slot '{name}': min_value", path),
            max_value=_number(spec.get("max_value", 1.0), f"slot '{name}': max_value", path),
        )
    return slots


def _responses(raw: Any, path: Path) -> dict[str, list[dict[str, Any]]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'responses' must map utter_ names to variations")
    responses = {}
    for name, variations in raw.items():
        if RETRIEVAL_DELIMITER in str(name):
            intent, _, key = str(name).removeprefix("utter_").partition(RETRIEVAL_DELIMITER)
            if not str(name).startswith("utter_") or not intent or not key:
                raise ConfigError(
                    f"{path}: response '{name}' is not a retrieval response name. Fix: write "
                    "'utter_<intent>/<key>', e.g. 'utter_chitchat/ask_name'"
                )
        if not isinstance(variations, list) or not variations:
            raise ConfigError(f"{path}: response '{name}' needs a list of variations")
        for variation in variations:
            if not isinstance(variation, dict) or not (
                {"text", "image", "custom", "buttons", "attachment"} & set(variation)
            ):
                raise ConfigError(
                    f"{path}: a variation of '{name}' needs 'text' (or image/custom/buttons)"
                )
        responses[str(name)] = [dict(v) for v in variations]
    return responses


def _forms(raw: Any, path: Path) -> dict[str, Form]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'forms' must map form names to definitions")
    forms = {}
    for name, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: form '{name}' needs 'required_slots: [slot, ...]'")
        required = spec.get("required_slots")
        if isinstance(required, dict):  # Rasa 2 style mapping of slot → mappings
            required = list(required)
        if not isinstance(required, list):
            raise ConfigError(f"{path}: form '{name}' needs 'required_slots: [slot, ...]'")
        forms[str(name)] = Form(
            str(name), tuple(str(s) for s in required), _as_tuple(spec.get("ignored_intents"))
        )
    return forms


def parse_domain(data: dict[str, Any], path: Path) -> Domain:
    session = data.get("session_config") or {}
    if not isinstance(session, dict):
        raise ConfigError(
            f"{path}: 'session_config' must be a mapping with session_expiration_time and "
            "carry_over_slots_to_new_session"
        )
    slots = _slots(data.get("slots"), path)
    forms = _forms(data.get("forms"), path)
    if forms and REQUESTED_SLOT not in slots:
        slots[REQUESTED_SLOT] = Slot(REQUESTED_SLOT, "text", influence_conversation=False)
    for form in forms.values():
        for slot in form.required_slots:
            if slot not in slots:
                raise ConfigError(
                    f"{path}: form '{form.name}' requires slot '{slot}', which is not "
                    "declared under 'slots:'"
                )
    intents, properties, retrieval = _intents(data.get("intents"), path)
    responses = _responses(data.get("responses"), path)
    retrieval |= {
        name.removeprefix("utter_").split(RETRIEVAL_DELIMITER)[0]
        for name in responses
        if RETRIEVAL_DELIMITER in name
    }
    return Domain(
        intents=intents,
        entities=_names(data.get("entities"), "entities", path),
        slots=slots,
        responses=responses,
        actions=_names(data.get("actions"), "actions", path),
        forms=forms,
        session_config=SessionConfig(
            expiration_minutes=_number(
                session.get("session_expiration_time", 60), "session_expiration_time", path
            ),
            carry_over_slots=bool(session.get("carry_over_slots_to_new_session", True)),
        ),
        raw=data,
        retrieval_intents=frozenset(retrieval),
        intent_properties=properties,
    )


_LIST_KEYS = ("intents", "entities", "actions")
_MAP_KEYS = {"slots": "slot", "responses": "response", "forms": "form"}


def _shown(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)


def _read_mapping(path: Path, shown: str, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason}). Fix: save it as UTF-8") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(shown, exc)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}:1: expected a mapping with {what}")
    return data


def _key_lines(path: Path, key: str) -> dict[str, int]:
    """The line of every name under the top-level ``key`` of a YAML file (1-based)."""
    root = yaml.compose(path.read_text(encoding="utf-8"))
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if getattr(k, "value", None) == key and isinstance(v, yaml.MappingNode):
                for name, _ in v.value:
                    lines[str(name.value)] = name.start_mark.line + 1
    return lines


def _item_name(item: Any) -> str:
    """The name of a list entry: ``greet`` or ``{greet: {...}}`` (others: as written)."""
    if isinstance(item, dict) and len(item) == 1:
        return str(next(iter(item)))
    return item if isinstance(item, str) else repr(item)


def _merge(
    merged: dict[str, Any],
    data: dict[str, Any],
    shown: str,
    origins: dict[tuple[str, str], str],
    path: Path,
) -> None:
    """Add one domain file's ``data`` to ``merged`` (Rasa's merge of a domain folder)."""
    for key, value in data.items():
        if key in _LIST_KEYS and isinstance(value, list):
            have = merged.setdefault(key, [])
            seen = {_item_name(i) for i in have}
            for item in value:
                name = _item_name(item)
                if name not in seen:
                    have.append(item)
                    seen.add(name)
        elif key in _MAP_KEYS and isinstance(value, dict):
            have = merged.setdefault(key, {})
            if not isinstance(have, dict):
                continue  # the shape error is reported by parse_domain
            lines = _key_lines(path, key)
            for name, spec in value.items():
                where = f"{shown}:{lines[str(name)]}" if str(name) in lines else shown
                if name in have:
                    raise ConfigError(
                        f"{where}: {_MAP_KEYS[key]} '{name}' is also defined in "
                        f"{origins[(key, str(name))]}. Fix: keep one of the two definitions"
                    )
                have[name] = spec
                origins[(key, str(name))] = where
        elif key == "version":
            merged.setdefault(key, value)
        elif key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            if key == "session_config":
                raise ConfigError(
                    f"{shown}: 'session_config' is also set in another domain file. Fix: set "
                    "it in one file only"
                )
            merged[key] = {**merged[key], **value}
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *value]
        else:
            merged.setdefault(key, value)


def load_domain(path: Path, data_files: Sequence[Path] = (), root: Path | None = None) -> Domain:
    """The domain of ``path`` (a file, or a folder whose YAML files are merged) plus the
    ``responses:`` of ``data_files``; file names in errors are relative to ``root``."""
    if path.is_dir():
        files = yaml_files((path,))
        if not files:
            raise ConfigError(
                f"{_shown(path, root)}: the domain folder holds no .yml files. Fix: put the "
                "domain files (intents:, responses:, ...) there, or write domain.yml"
            )
    elif path.is_file():
        files = [path]
    else:
        raise ConfigError(
            f"{_shown(path, root)} does not exist. Fix: create domain.yml (or a domain/ "
            "folder) with 'intents:' and 'responses:', or pass --domain PATH"
        )
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    for file in files:
        shown = _shown(file, root)
        data = _read_mapping(file, shown, "'intents:' and 'responses:'")
        _merge(merged, data, shown, origins, file)
    for file in data_files:
        shown = _shown(file, root)
        data = _read_mapping(file, shown, "'nlu:', 'stories:', 'rules:' or 'responses:'")
        responses = data.get("responses")
        if responses is None:
            continue
        if not isinstance(responses, dict):
            raise ConfigError(
                f"{shown}: 'responses' must map utter_ names to variations. Fix: write "
                "'responses:' then '  utter_name:' and '  - text: ...'"
            )
        _merge(merged, {"responses": responses}, shown, origins, file)
    return parse_domain(merged, path)


def load_project_domain(project: Project) -> Domain:
    """The project's domain (file or folder) with the ``responses:`` of its data files."""
    return load_domain(project.domain_file, project.data_files(), project.root)
