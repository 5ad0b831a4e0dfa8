"""The facade the bot uses: load a built knowledge base, search it, decide, log gaps, and
swap in a rebuilt index while serving.

A search reads one immutable snapshot (:class:`_Snapshot`) taken at its start, so a reload
never affects searches in flight and no reader ever sees a half-loaded index.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bot.kb.build import BUILD_DIR, META_FILE, KBNotBuiltError, load_components, read_meta
from bot.kb.gaps import GapLog
from bot.kb.retriever import ActiveSet, Components, Decision, Hit, Retriever, decide
from bot.kb.settings import KBSettings, read_settings
from bot.kb.sources import KBEntry

_FAR_PAST = -(2**31)
_FAR_FUTURE = 2**31 - 1


@dataclass
class _Snapshot:
    retriever: Retriever
    meta: dict[str, Any]
    stamp: tuple[int, int, int]
    valid_from: np.ndarray | None  # ordinal days, or None when no entry has dates
    valid_to: np.ndarray | None
    restricted: np.ndarray | None  # entries limited to some channels, or None
    channel_of: dict[str, np.ndarray] = field(default_factory=dict)
    _active: dict[tuple[str | None, int], ActiveSet | None] = field(default_factory=dict)
    _searches: OrderedDict[tuple[str, int, str | None, int], tuple[Hit, ...]] = field(
        default_factory=OrderedDict
    )
    _searches_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, parts: Components, meta: dict[str, Any], stamp: tuple[int, int, int]) -> _Snapshot:
        entries = parts.entries
        vf = vt = restricted = None
        if any(e.valid_from or e.valid_to for e in entries):
            vf = np.asarray(
                [e.valid_from.toordinal() if e.valid_from else _FAR_PAST for e in entries],
                np.int64,
            )
            vt = np.asarray(
                [e.valid_to.toordinal() if e.valid_to else _FAR_FUTURE for e in entries],
                np.int64,
            )
        channel_of: dict[str, np.ndarray] = {}
        if any(e.channels for e in entries):
            restricted = np.asarray([bool(e.channels) for e in entries])
            for number, entry in enumerate(entries):
                for channel in entry.channels:
                    channel_of.setdefault(channel, np.zeros(len(entries), bool))[number] = True
        return cls(Retriever(parts), meta, stamp, vf, vt, restricted, channel_of)

    def active(self, channel: str | None, today: date) -> ActiveSet | None:
        """Entries a search may return; None when every entry may be returned."""
        key = (channel, today.toordinal())
        try:
            return self._active[key]
        except KeyError:  # (also when another thread just cleared the cache)
            pass
        mask: np.ndarray | None = None
        if self.valid_from is not None and self.valid_to is not None:
            day = today.toordinal()
            mask = (self.valid_from <= day) & (day <= self.valid_to)
        if channel is not None and self.restricted is not None:
            allowed = ~self.restricted
            members = self.channel_of.get(channel)
            if members is not None:
                allowed = allowed | members
            mask = allowed if mask is None else mask & allowed
        result = None if mask is None or bool(mask.all()) else ActiveSet.of(mask)
        if len(self._active) > 64:
            self._active.clear()
        self._active[key] = result
        return result

    def search(self, query: str, top: int, channel: str | None, today: date) -> list[Hit]:
        """The retriever's hits. The latest ``search_cache`` distinct searches (setting) are
        remembered: a search depends only on this build, the text, ``top``, the channel and
        the day. Hits are immutable; callers get lists of their own."""
        size = self.retriever.parts.settings.search_cache
        key = (query, top, channel, today.toordinal())
        if size:
            with self._searches_lock:
                hits = self._searches.get(key)
                if hits is not None:
                    self._searches.move_to_end(key)
                    return list(hits)
        active = self.active(channel, today)
        if active is not None and active.few is not None and active.few.size == 0:
            found: list[Hit] = []
        else:
            found = self.retriever.search(query, top, active)
        if size:
            with self._searches_lock:
                self._searches[key] = tuple(found)
                while len(self._searches) > size:
                    self._searches.popitem(last=False)
        return found


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class KnowledgeBase:
    """``KnowledgeBase.load(kb_dir)``; then ``search``, ``decide`` and ``reload_if_changed``."""

    def __init__(self, kb_dir: Path, settings: KBSettings, snapshot: _Snapshot):
        self.kb_dir = kb_dir
        self.settings = settings
        self._snapshot = snapshot
        self._reload_lock = threading.Lock()
        self.gaps = GapLog.in_dir(kb_dir)

    @classmethod
    def load(cls, kb_dir: Path, settings: KBSettings | None = None) -> KnowledgeBase:
        """Load ``kb_dir/build/``. ``settings`` default to the ``knowledge_base`` section of
        the ``config.yml`` beside ``kb_dir`` (the project folder), else the defaults."""
        kb_dir = Path(kb_dir)
        if settings is None:
            settings = read_settings(kb_dir.resolve().parent / "config.yml")
        return cls(kb_dir, settings, _load_snapshot(kb_dir / BUILD_DIR, settings))

    @property
    def meta(self) -> dict[str, Any]:
        return self._snapshot.meta

    @property
    def build_id(self) -> str:
        return str(self._snapshot.meta.get("build_id", ""))

    @property
    def parts(self) -> Components:
        """The loaded components (read-only; for tools and benchmarks)."""
        return self._snapshot.retriever.parts

    @property
    def entries(self) -> list[KBEntry]:
        """Every entry of the loaded build (active or not)."""
        return self._snapshot.retriever.parts.entries

    def __len__(self) -> int:
        return len(self.entries)

    def search(
        self, query: str, top: int = 5, channel: str | None = None, today: date | None = None
    ) -> list[Hit]:
        """Best entries first, each once, with calibrated scores in [0, 1]. Entries outside
        ``channel`` (None: any channel) or their validity dates on ``today`` never appear."""
        snapshot = self._snapshot  # one snapshot for the whole search
        return snapshot.search(query, top, channel, today or date.today())

    def decide(
        self,
        query: str,
        channel: str | None = None,
        today: date | None = None,
        log_gap: bool = True,
    ) -> Decision:
        """``answer``, ``clarify`` (ask 您是想问： with the hits) or ``none`` (logged as a gap)."""
        thresholds = self.settings.thresholds
        hits = self.search(query, max(5, thresholds.max_clarify), channel, today)
        decision = decide(hits, thresholds)
        if decision.kind == "none" and log_gap:
            self.gaps.record(
                query, [(h.id, h.question, h.score) for h in decision.candidates[:5]], channel
            )
        return decision

    def reload_if_changed(self) -> bool:
        """Load a rebuilt index if ``build/`` changed on disk, then swap it in atomically.
        Thread-safe; searches already running finish on the old index. Returns whether
        a new build was loaded."""
        meta_file = self.kb_dir / BUILD_DIR / META_FILE
        try:
            stamp = _stamp(meta_file)
        except OSError:
            return False  # being swapped or removed: keep serving the loaded one
        if stamp == self._snapshot.stamp:
            return False
        with self._reload_lock:
            current = self._snapshot
            if stamp == current.stamp:
                return False
            try:
                if read_meta(meta_file.parent).get("build_id") == current.meta.get("build_id"):
                    current.stamp = stamp
                    return False
                fresh = _load_snapshot(meta_file.parent, self.settings)
            except KBNotBuiltError:
                return False
            self._snapshot = fresh
            return True


def _load_snapshot(build_dir: Path, settings: KBSettings, attempts: int = 20) -> _Snapshot:
    """Load a consistent build: retried while a rebuild is being renamed into place or
    when the build changed while it was being read."""
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            stamp = _stamp(build_dir / META_FILE)
            meta = read_meta(build_dir)
            parts = load_components(build_dir, settings, meta)
            if read_meta(build_dir).get("build_id") == meta.get("build_id"):
                return _Snapshot.of(parts, meta, stamp)
        except KBNotBuiltError as exc:
            last = exc
            if not any(build_dir.parent.glob(f".{build_dir.name}-old-*")):
                raise  # not built at all (rather than being swapped right now)
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.05 * (attempt + 1))
    raise KBNotBuiltError(
        f"cannot load the knowledge base in {build_dir} ({last}); run 'bot kb build'"
    )
