"""A small name -> factory registry, shared by models, distillation methods and explainers.

Modelled on timm's ``register_model`` / ``create_model``: a decorator fills a
dict, ``create(name, ...)`` builds, ``available()`` lists the names (and feeds
the dashboard's select boxes). An unknown name raises ``ValueError`` that lists
the valid names, like MONAI's ``look_up_option``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Entry:
    """One registered factory and its free-form metadata (e.g. ``role="student"``)."""

    name: str
    factory: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Names mapped to factories.

    Args:
        kind: What the entries are, used in error messages ("model", "method").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that registers ``factory`` under ``name`` with metadata ``meta``."""

        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, dict(meta))
            return factory

        return decorator

    def entry(self, name: str) -> Entry:
        """Return the entry for ``name``; raises ``ValueError`` listing valid names."""
        if name not in self._entries:
            valid = ", ".join(self.available())
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; choose one of: {valid}")
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Build the entry registered as ``name`` with the given arguments."""
        return self.entry(name).factory(*args, **kwargs)

    def available(self, **where: Any) -> list[str]:
        """Registered names, sorted; ``where`` filters on metadata (``role="teacher"``)."""
        return sorted(
            name
            for name, entry in self._entries.items()
            if all(entry.meta.get(key) == value for key, value in where.items())
        )

    def __contains__(self, name: object) -> bool:
        return name in self._entries
