"""Analytics over the conversation records: the tracker store's ``events`` table and the
handoff tables. :mod:`~bot.analytics.figures` defines every figure (pure Python over rows),
:mod:`~bot.analytics.query` reads the rows with SQL, :mod:`~bot.analytics.report` writes the
tables (rich, CSV) and charts (PNG). See ``docs/analytics.md``."""
