"""GPU utilization through NVML (``nvidia-ml-py``), imported lazily.

``utilization()`` is the highest utilization over all GPUs, or None when no
GPU or driver is readable. A failed initialisation is retried every
``retry_seconds`` (the driver may come up after the agent at boot), not on
every poll.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


def _import_pynvml() -> ModuleType:
    return importlib.import_module("pynvml")


class NvmlGpu:
    def __init__(
        self,
        monotonic: Callable[[], float],
        *,
        retry_seconds: float = 60.0,
        loader: Callable[[], Any] = _import_pynvml,
    ) -> None:
        self._monotonic = monotonic
        self._retry_seconds = retry_seconds
        self._loader = loader
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._next_try: float | None = None
        self._reported = False

    def _init(self) -> bool:
        now = self._monotonic()
        if self._next_try is not None and now < self._next_try:
            return False
        try:
            nvml = self._loader()
            nvml.nvmlInit()
            count = int(nvml.nvmlDeviceGetCount())
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # noqa: BLE001 - ImportError, NVMLError, OSError: all mean "no GPU readable"
            self._next_try = now + self._retry_seconds
            if not self._reported:
                log.info(
                    "no GPU readable through NVML (%s: %s); retrying every %gs",
                    type(exc).__name__,
                    exc,
                    self._retry_seconds,
                )
                self._reported = True
            return False
        if not handles:
            self._next_try = now + self._retry_seconds
            self._shutdown(nvml)
            return False
        self._nvml, self._handles = nvml, handles
        log.info("NVML: %d GPU(s)", len(handles))
        return True

    @staticmethod
    def _shutdown(nvml: Any) -> None:
        with contextlib.suppress(Exception):  # best effort on a driver that is already failing
            nvml.nvmlShutdown()

    def utilization(self) -> float | None:
        if self._nvml is None and not self._init():
            return None
        try:
            values = [float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self._handles]
        except Exception as exc:  # noqa: BLE001 - a driver error: report "unreadable", re-initialise later
            log.warning("NVML read failed (%s: %s); will re-initialise", type(exc).__name__, exc)
            self.close()
            self._next_try = self._monotonic() + self._retry_seconds
            return None
        return max(values)

    def close(self) -> None:
        if self._nvml is not None:
            self._shutdown(self._nvml)
        self._nvml, self._handles = None, []
