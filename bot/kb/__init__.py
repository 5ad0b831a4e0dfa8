"""The knowledge base: FAQ entries retrieved by a hybrid FAISS + BM25 + classifier index.

``KnowledgeBase.load(kb_dir)`` for the bot, ``build_knowledge_base`` for ``bot kb build`` and
``bot train``; see docs/knowledge-base.md.
"""

from bot.kb.build import BuildResult, KBNotBuiltError, build_knowledge_base
from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.retriever import Decision, Hit
from bot.kb.settings import KBSettings, Thresholds
from bot.kb.sources import KBEntry, KBSourceError, load_sources

__all__ = [
    "BuildResult",
    "Decision",
    "Hit",
    "KBEntry",
    "KBNotBuiltError",
    "KBSettings",
    "KBSourceError",
    "KnowledgeBase",
    "Thresholds",
    "build_knowledge_base",
    "load_sources",
]
