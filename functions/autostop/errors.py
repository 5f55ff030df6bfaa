"""Errors that become a ``{"ok": false, "error": {...}}`` answer (nothing changed).

The codes are the contract's (``autostop_contract.Code``); so is the quoting of a bad value.
"""

from __future__ import annotations

from typing import Any

from autostop_contract import Code


class RequestError(Exception):
    """Bad input or a state that makes the request impossible."""

    def __init__(self, code: Code, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def answer(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": str(self.code), "message": self.message}, **self.extra}
