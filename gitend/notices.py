"""The one line SessionStart shows the user, and how often: each problem at most once a day.

A problem is keyed by what it is about (`held`, `conflict:<note>`, `snapshot:<commit>`, ...),
so a new one is shown at once while an old one waits a day.
"""
from __future__ import annotations

import json
import time

from gitend import files, paths

EVERY_S = 86400
PREFIX = "gitend: "


def due(problems: dict[str, str], now: float | None = None) -> list[str]:
    """The problems' texts not shown in the last day; they count as shown from now."""
    now = time.time() if now is None else now
    shown = _load()
    fresh = [key for key in problems if now - shown.get(key, float("-inf")) >= EVERY_S]
    if fresh:
        # Problems that went away are forgotten, so they are shown at once if they come back.
        kept = {key: when for key, when in shown.items() if key in problems}
        kept.update({key: now for key in fresh})
        try:
            paths.notices_file().parent.mkdir(parents=True, exist_ok=True)
            files.write_atomic(paths.notices_file(), json.dumps(kept, sort_keys=True).encode())
        except OSError:
            pass  # shown again next time rather than never
    return [problems[key] for key in fresh]


def line(texts: list[str]) -> str | None:
    """One line, whatever the number of problems."""
    return PREFIX + "; ".join(texts) if texts else None


def _load() -> dict[str, float]:
    try:
        data = json.loads(paths.notices_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(k, str) and isinstance(v, (int, float))}
