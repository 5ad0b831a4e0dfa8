"""bankbot: a Chinese-first customer-service bot runtime for banks.

The data flow is channel → processor → NLU → policy → action → channel; each stage
lives in its own sub-package (this release ships NLU: ``bot.nlu``).
"""

__version__ = "0.1.0"
