"""The demo's own logic that the slow end-to-end test cannot pin: the graph, failure and teardown lines."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from demo import run_demo
from demo.driver import DemoError, demo_graph


def test_the_demo_graph_does_real_work_and_differs_per_run() -> None:
    graph = demo_graph(0x3399FF)
    assert graph["1"]["class_type"] == "EmptyImage"
    assert graph["1"]["inputs"] | {"color": 0} == {"width": 2048, "height": 2048, "batch_size": 8, "color": 0}
    assert graph["2"]["class_type"] == "ImageBlur"
    assert graph["2"]["inputs"]["image"] == ["1", 0]
    assert graph["3"]["class_type"] == "SaveImage"
    assert graph["3"]["inputs"]["images"] == ["2", 0]
    assert demo_graph(1) != demo_graph(2)  # ComfyUI would serve an identical prompt from its cache


class FakeStack:
    """A `terraform test` that has applied and, once released, ends with ``returncode``."""

    def __init__(self, state_dir: Path, returncode: int, log: list[str]) -> None:
        self.state_dir = state_dir
        self.log = run_demo.ROOT / "build" / "terraform.log"
        self._returncode = returncode
        self._released = False
        self._events = log
        self.process = SimpleNamespace(pid=4242, returncode=None)
        (state_dir / "outputs.json").write_text("{}")

    @property
    def outputs_file(self) -> Path:
        return self.state_dir / "outputs.json"

    def applied(self) -> bool:
        return True

    def release(self) -> None:
        self._events.append("released")
        self._released = True

    def finished(self) -> bool:
        if self._released:
            self.process.returncode = self._returncode
        return self._released

    def close(self) -> None:
        pass

    def tail(self) -> str:
        return "Error: destroy failed"


def run_main(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, scenario_fails: bool, destroy_code: int
) -> tuple[int, list[dict[str, Any]], list[str]]:
    order: list[str] = []
    # main() points this process's boto3 at the (fake) emulator through os.environ; recording each key
    # here makes monkeypatch restore the environment afterwards, so no later test talks to 127.0.0.1:1.
    for key in (*run_demo.AWS_ENV, "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(key, os.environ.get(key, ""))

    @contextlib.contextmanager
    def fake_server(_log: Path) -> Iterator[Any]:
        yield SimpleNamespace(pid=4241, endpoint="http://127.0.0.1:1")

    def scenario(*_: Any) -> dict[str, Any]:
        order.append("scenario")
        if scenario_fails:
            raise DemoError("timed out after 60 s waiting for: the agent to report the job\nmore")
        return {"final_state": "stopped", "session_hours": [0.01]}

    machine = SimpleNamespace(pids=[], shutdown=lambda: order.append("machine down"))
    monkeypatch.setattr(run_demo, "unpack", lambda package, into: into)
    monkeypatch.setattr(run_demo, "moto_server", fake_server)
    monkeypatch.setattr(
        run_demo, "Stack", lambda state_dir, endpoint: FakeStack(state_dir, destroy_code, order)
    )
    monkeypatch.setattr(run_demo, "Deployment", SimpleNamespace(from_outputs=lambda outputs: SimpleNamespace(
        instance_id="i-1", functions={"start": "f"})))  # fmt: skip
    monkeypatch.setattr(run_demo, "Lambdas", lambda *_: None)
    monkeypatch.setattr(run_demo, "Machine", lambda *_: machine)
    monkeypatch.setattr(run_demo, "run_scenario", scenario)
    monkeypatch.setattr(run_demo, "ROOT", tmp_path)
    events_file = tmp_path / "events.json"
    code = run_demo.main(["--plain", "--events-file", str(events_file)])
    return code, json.loads(events_file.read_text())["events"], order


def test_a_failure_is_printed_when_it_happens_and_the_destroy_is_reported_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, events, order = run_main(monkeypatch, tmp_path, scenario_fails=True, destroy_code=0)
    assert code == 1
    steps = [(e["event"], e["decision"]) for e in events]
    assert steps[-2:] == [("demo", "FAILED"), ("terraform destroy", "destroyed")]
    assert events[-2]["reason"] == "timed out after 60 s waiting for: the agent to report the job"
    assert order == ["scenario", "machine down", "released"]  # FAILED came before the teardown began
    assert "demo ended in" in capsys.readouterr().out


def test_a_failed_destroy_says_so_and_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, events, _ = run_main(monkeypatch, tmp_path, scenario_fails=False, destroy_code=1)
    assert code == 1
    assert (events[-1]["event"], events[-1]["decision"]) == ("terraform destroy", "FAILED")
    assert "terraform test exited 1" in events[-1]["reason"]
    assert "Error: destroy failed" in capsys.readouterr().err


def test_a_clean_run_ends_with_the_destroy_and_exit_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, events, _ = run_main(monkeypatch, tmp_path, scenario_fails=False, destroy_code=0)
    assert code == 0
    assert (events[-1]["event"], events[-1]["decision"]) == ("terraform destroy", "destroyed")
    assert not any(e["decision"] == "FAILED" for e in events)
