"""Sentiment of a customer message for the handoff triggers: the lexicon (``lexicon``), the
labelled data and lexicon files (``data``) and the NLU component (``analyzer``); its
evaluation is :mod:`bot.evaluation.sentiment`."""
