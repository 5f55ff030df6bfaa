"""Errors that become a ``{"ok": false, "error": {...}}`` answer (nothing changed)."""

from __future__ import annotations

from typing import Any


class RequestError(Exception):
    """Bad input or a state that makes the request impossible."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def answer(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}, **self.extra}
