"""Errors that become a ``{"ok": false, "error": {...}}`` answer (nothing changed)."""

from __future__ import annotations

from typing import Any

#: How much of a bad value an error message or a log line quotes.
QUOTE_LIMIT = 100


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (never echo a huge input in full)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a value, clipped."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a pathologically nested value, an int too long to print
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


class RequestError(Exception):
    """Bad input or a state that makes the request impossible."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def answer(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}, **self.extra}
