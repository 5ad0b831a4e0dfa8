"""Custom components by dotted path: ours load from the project; Rasa-style ones are
refused in one line naming bankbot's interface."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ConfigError
from tests.nlu_helpers import build, nlu_data, round_trip, trained

GOOD = """
from pathlib import Path
from bot.nlu.interfaces import Component


class Shouter(Component):
    name = "Shouter"
    defaults = {"suffix": "!"}

    def train(self, data, messages):
        self.count = len(data.examples)
        for m in messages:
            self.process(m)

    def process(self, message):
        message.extras["shout"] = message.text.upper() + self.config["suffix"]

    def persist(self, directory: Path) -> None:
        (directory / "count.txt").write_text(str(self.count))

    @classmethod
    def load(cls, directory, config):
        obj = cls(config)
        obj.count = int((directory / "count.txt").read_text())
        return obj
"""

RASA_GRAPH = """
class GraphComponent:
    pass


class Sentiment(GraphComponent):
    @classmethod
    def create(cls, config, model_storage, resource, execution_context):
        return cls()

    def process(self, messages):
        return messages
"""

RASA_IMPORT = "from rasa.engine.graph import GraphComponent\n"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    package = tmp_path / "my_addons"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(textwrap.dedent(GOOD))
    (package / "graph.py").write_text(RASA_GRAPH)
    (package / "uses_rasa.py").write_text(RASA_IMPORT)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("my_addons")]:
        del sys.modules[name]
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_custom_component_trains_persists_and_loads(project: Path) -> None:
    data = nlu_data(
        project, "- intent: a\n  examples: |\n    - hi\n- intent: b\n  examples: |\n    - bye\n"
    )
    nlu = trained([{"name": "my_addons.good.Shouter", "suffix": "?"}], data, project)
    assert nlu.parse("hey")["shout"] == "HEY?"
    assert nlu.resolved_config() == [{"name": "my_addons.good.Shouter", "suffix": "?"}]
    loaded = round_trip(nlu, project)
    assert loaded.parse("yo")["shout"] == "YO?"
    assert loaded.components[0].count == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("my_addons.graph.Sentiment", "it is a Rasa GraphComponent"),
        ("my_addons.uses_rasa.Thing", "it imports rasa"),
    ],
)
def test_rasa_components_are_refused_in_one_line(project: Path, name: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        build([{"name": name}], project)
    message = str(info.value)
    assert "\n" not in message
    assert why in message
    assert "bot.nlu.interfaces.Component" in message
    assert "train(data, messages), process(message)" in message


def test_missing_module_or_class(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"module 'my_addons\.nothere' not found"):
        build([{"name": "my_addons.nothere.X"}], project)
    with pytest.raises(ConfigError, match="has no class 'Missing'"):
        build([{"name": "my_addons.good.Missing"}], project)
