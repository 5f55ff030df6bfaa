"""Configuration, ``--once``, the single-copy lock, IMDSv2 and a clean SIGTERM exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from autostop_agent.__main__ import EX_LOCKED, main
from autostop_agent.config import EX_CONFIG, ConfigError, load_config, parse_env_file, read_environment
from autostop_agent.imds import ImdsError, fetch_identity
from autostop_agent.lock import LockHeld, SingleInstanceLock
from tests.agent.helpers import INSTANCE, PARAMETER, ComfyStandIn, FakeClock, spawn_agent_service

REPO = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    config = load_config({"AGENT_STATE_PARAMETER": PARAMETER})
    assert config.comfyui_url == "http://127.0.0.1:8188"
    assert config.metrics_namespace == "GpuAutostop"
    assert (config.poll_seconds, config.startup_poll_seconds, config.heartbeat_seconds) == (5, 1, 60)
    assert config.idle_minutes == 10
    assert config.self_stop_minutes == 20
    assert config.shutdown_command == ("shutdown", "-h", "now")
    assert config.instance_id is None
    assert config.region is None
    assert load_config({"AGENT_STATE_PARAMETER": PARAMETER, "IDLE_MINUTES": "30"}).self_stop_minutes == 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COMFYUI_URL", "ftp://127.0.0.1:8188"),
        ("COMFYUI_URL", "http://:8188"),
        ("COMFYUI_URL", "http://127.0.0.1:99999"),
        ("POLL_SECONDS", "abc"),
        ("POLL_SECONDS", "0"),
        ("POLL_SECONDS", "nan"),
        ("HEARTBEAT_SECONDS", "2"),
        ("IDLE_MINUTES", "-1"),
        ("SELF_STOP_MINUTES", "5"),  # below IDLE_MINUTES (10): would pre-empt the control plane
        ("SELF_STOP_CHECKS", "2.5"),
        ("GPU_BUSY_PERCENT", "101"),
        ("CPU_BUSY_PERCENT", "lots"),
        ("SHUTDOWN_COMMAND", "   "),
        ("SHUTDOWN_COMMAND", "shutdown 'unclosed"),
        ("ACTIVITY_PROCESS_REGEX", "train(["),
        ("INSTANCE_ID", "my-instance"),
        ("AWS_REGION", "Frankfurt"),
        ("METRICS_NAMESPACE", "AWS/EC2"),
        ("AGENT_STATE_PARAMETER", "has spaces"),
        ("AGENT_LOCK_FILE", "relative.lock"),
        ("STARTUP_POLL_SECONDS", "30"),
        ("DETECT_SESSIONS", "maybe"),
        ("BOOT_AT", "yesterday"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({"AGENT_STATE_PARAMETER": PARAMETER, name: value})


def test_session_detection_is_on_unless_switched_off() -> None:
    assert load_config({"AGENT_STATE_PARAMETER": PARAMETER}).detect_sessions is True
    assert (
        load_config({"AGENT_STATE_PARAMETER": PARAMETER, "DETECT_SESSIONS": "false"}).detect_sessions is False
    )
    assert load_config({"AGENT_STATE_PARAMETER": PARAMETER, "DETECT_SESSIONS": "On"}).detect_sessions is True


def test_boot_time_is_read_from_the_kernel_unless_given() -> None:
    assert load_config({"AGENT_STATE_PARAMETER": PARAMETER}).boot_at is None
    given = load_config({"AGENT_STATE_PARAMETER": PARAMETER, "BOOT_AT": "2026-11-22T08:00:03Z"}).boot_at
    assert given is not None
    assert given.isoformat() == "2026-11-22T08:00:03+00:00"


def test_parameter_required_for_the_loop_not_for_once() -> None:
    with pytest.raises(ConfigError, match="AGENT_STATE_PARAMETER is required"):
        load_config({})
    assert load_config({}, require_parameter=False).agent_state_parameter is None


def test_env_file_with_environment_precedence(tmp_path: Path) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        "# written by install.sh\n\nAGENT_STATE_PARAMETER=/from/file\nIDLE_MINUTES=15\n"
        "SHUTDOWN_COMMAND=shutdown -h +1\nexport METRICS_NAMESPACE='Quoted/Ns'\n"
    )
    merged = read_environment({"IDLE_MINUTES": "12"}, str(env_file))
    config = load_config(merged)
    assert config.agent_state_parameter == "/from/file"
    assert config.idle_minutes == 12  # the environment wins
    assert config.shutdown_command == ("shutdown", "-h", "+1")
    assert config.metrics_namespace == "Quoted/Ns"
    # the default file may be absent; a named one may not
    assert read_environment({"AGENT_ENV_FILE": ""}, None) is not None
    with pytest.raises(ConfigError, match="does not exist"):
        read_environment({}, str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match="line 1"):
        parse_env_file("not a pair\n")


def test_main_exits_78_naming_the_variable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    env = {"AGENT_ENV_FILE": str(tmp_path / "none.env")}
    assert main([], env) == EX_CONFIG
    assert "AGENT_ENV_FILE" in capsys.readouterr().err
    (tmp_path / "a.env").write_text("AGENT_STATE_PARAMETER=/p\nPOLL_SECONDS=fast\n")
    assert main(["--env-file", str(tmp_path / "a.env")], {}) == EX_CONFIG
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert "POLL_SECONDS" in err


def test_once_prints_the_record_and_writes_nothing(
    comfy: ComfyStandIn, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autostop_agent.aws as aws

    def no_aws(region: str) -> Any:
        raise AssertionError("--once must not touch AWS")

    monkeypatch.setattr(aws, "boto_factory", no_aws)
    monkeypatch.setattr("autostop_agent.__main__.boto_factory", no_aws)
    monkeypatch.setattr("autostop_agent.agent.Agent._write", lambda *a: (_ for _ in ()).throw(AssertionError))
    comfy.busy()
    env = {
        "COMFYUI_URL": comfy.url,
        "INSTANCE_ID": INSTANCE,
        "AWS_REGION": "eu-central-1",
        "AGENT_ENV_FILE": str(tmp_path / "empty.env"),
    }
    (tmp_path / "empty.env").write_text("")
    fake = FakeClock()
    assert main(["--once"], env, fake) == 0
    assert fake.slept == [0.5]  # the CPU rate needs two samples; the fake clock keeps the test instant
    record = json.loads(capsys.readouterr().out)
    assert record["instance_id"] == INSTANCE
    assert record["comfyui_ready"] is True
    assert (record["queue_running"], record["queue_pending"]) == (1, 4)
    assert record["last_activity_at"] == record["heartbeat_at"]
    assert "queue 1 running + 4 pending" in record["activity"]


def test_once_as_a_module_without_comfyui_or_imds(tmp_path: Path) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text("COMFYUI_URL=http://127.0.0.1:9\nIMDS_ENDPOINT=http://127.0.0.1:9\n")
    result = subprocess.run(
        [sys.executable, "-m", "autostop_agent", "--once", "--env-file", str(env_file)],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO / "agent")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["comfyui_ready"] is False
    assert record["instance_id"] is None
    assert "IMDS" in result.stderr
    assert "boto3" not in result.stderr


def test_lock_allows_one_copy(tmp_path: Path) -> None:
    path = tmp_path / "run" / "agent.lock"
    first = SingleInstanceLock(str(path))
    first.acquire()
    with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        SingleInstanceLock(str(path)).acquire()
    first.release()
    with SingleInstanceLock(str(path)):
        pass


class _Imds(BaseHTTPRequestHandler):
    token = "tok-123"
    refuse = False
    calls: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        self.calls.append("PUT " + self.path)
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self._answer(200 if ok else 400, self.token)

    def do_GET(self) -> None:
        self.calls.append("GET " + self.path)
        if self.refuse or self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self._answer(401, "")
            return
        answers = {
            "/latest/meta-data/instance-id": INSTANCE,
            "/latest/meta-data/placement/region": "eu-central-1",
        }
        self._answer(200, answers.get(self.path, "")) if self.path in answers else self._answer(404, "")

    def _answer(self, status: int, body: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Imds.calls = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_imds_v2_token_first(imds: str) -> None:
    identity = fetch_identity(imds, timeout=1)
    assert (identity.instance_id, identity.region) == (INSTANCE, "eu-central-1")
    assert _Imds.calls[0] == "PUT /latest/api/token"


def test_imds_failures(imds: str) -> None:
    _Imds.token = ""
    try:
        with pytest.raises(ImdsError, match="empty token"):
            fetch_identity(imds, timeout=1)
    finally:
        _Imds.token = "tok-123"
    _Imds.refuse = True  # e.g. a hop limit of 1 from a container: GETs are refused
    try:
        with pytest.raises(ImdsError, match="401"):
            fetch_identity(imds, timeout=1)
    finally:
        _Imds.refuse = False
    with pytest.raises(ImdsError):
        fetch_identity("http://127.0.0.1:9", timeout=0.5)


def test_service_loop_ends_cleanly_on_sigterm_and_holds_the_lock(comfy: ComfyStandIn, tmp_path: Path) -> None:
    lock = tmp_path / "agent.lock"
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"COMFYUI_URL={comfy.url}\nAGENT_STATE_PARAMETER={PARAMETER}\nINSTANCE_ID={INSTANCE}\n"
        f"AWS_REGION=us-east-1\nAGENT_LOCK_FILE={lock}\nAWS_ENDPOINT_URL=http://127.0.0.1:9\n"
        "AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
    )
    proc, lines = spawn_agent_service(env_file)
    seen: list[str] = []
    try:
        while not any("ComfyUI ready" in s for s in seen):
            seen.append(lines.get(timeout=20))
        # a second copy is refused while the first runs
        assert main([], {"AGENT_ENV_FILE": str(env_file)}) == EX_LOCKED
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while not lines.empty():
        seen.append(lines.get())
    text = "".join(seen)
    assert "stopping" in text
    assert "Traceback" not in text
    assert "PutParameter" in text  # the unreachable endpoint was reported, not fatal


@pytest.mark.parametrize(
    ("content", "line", "why"),
    [
        (b"AGENT_STATE_PARAMETER=/p\nIDLE_MINUTES=10\xff\n", 2, "not UTF-8"),
        (b"\xef\xbb\xbf\xfe\xfeAGENT_STATE_PARAMETER=/p\n", 1, "not UTF-8"),  # a UTF-16 editor's leftovers
        (b"# ok\n\nAGENT_STATE_PARAMETER=/p\nIDLE_MINUTES\n", 4, "expected KEY=value"),
        (b"AGENT_STATE_PARAMETER=/p\n2BAD=1\n", 2, "expected KEY=value"),
        (b'AGENT_STATE_PARAMETER="/p\n', 1, 'AGENT_STATE_PARAMETER has an unmatched " quote'),
        (b"AGENT_STATE_PARAMETER=/p\nIDLE_MINUTES='5\n", 2, "IDLE_MINUTES has an unmatched ' quote"),
        (b"AGENT_STATE_PARAMETER=/p\x00\n", 1, "control character"),
        (b"AGENT_STATE_PARAMETER=/p\nPOLL\x1bSECONDS=5\n", 2, "control character"),
    ],
)
def test_a_damaged_env_file_exits_78_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, line: int, why: str
) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_bytes(content)
    assert main(["--check-config", "--env-file", str(env_file)], {}) == EX_CONFIG
    err = capsys.readouterr().err
    assert f"env file {env_file} line {line}: {why}" in err
    assert "Traceback" not in err
    # the same file named by AGENT_ENV_FILE, as the systemd unit runs it
    assert main([], {"AGENT_ENV_FILE": str(env_file)}) == EX_CONFIG


def test_a_directory_as_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        read_environment({}, str(tmp_path))


def test_tabs_and_quoted_values_still_parse() -> None:
    values = parse_env_file("A=\t'x y'\t\nexport B=\"\"\nC='a'\n")
    assert values == {"A": "x y", "B": "", "C": "a"}
