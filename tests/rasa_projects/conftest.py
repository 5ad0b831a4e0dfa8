"""The folders below are Rasa 3.x projects used as data by ``tests/test_rasa_projects.py``.
Nothing here is a pytest test: their ``actions.py`` / ``actions/`` must not be imported and
their ``tests/`` folders hold Rasa test stories, not Python tests."""

collect_ignore_glob = ["*"]
