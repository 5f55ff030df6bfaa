"""`make demo`: the whole system doing its job on a local AWS emulator, in under two minutes.

1. starts a moto server on 127.0.0.1 (a free port);
2. applies the real Terraform stack to it through `terraform test` (demo/terraform/demo.tftest.hcl,
   with the same overrides as the emulator apply test, printed below), holding it applied;
3. drives two request cycles (demo/driver.py): the real Lambda handlers from build/functions.zip,
   the real agent, a stand-in ComfyUI (or yours: COMFYUI_URL=http://host:8188);
4. lets `terraform test` destroy the stack, stops every process it started (also on Ctrl-C or
   failure) and prints the timeline's summary. A failure is printed when it happens; the teardown
   follows and its own line says whether the destroy succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from autostop.pricing import hourly_price
from demo.driver import ROOT, DemoError, Deployment, Lambdas, Machine, Timeline, run_scenario
from scripts.with_moto_server import moto_server

DEMO_TESTS = ROOT / "terraform" / "tests" / "demo"  # terraform wants it inside its configuration
TEST_FILE = DEMO_TESTS / "demo.tftest.hcl"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def overrides() -> list[str]:
    """The resources the demo's apply replaces with fakes, as the emulator apply test does."""
    return re.findall(r"target\s*=\s*(\S+)", TEST_FILE.read_text())


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if not found:
        raise DemoError("terraform is not on PATH; install Terraform >= 1.9 (README, 'Quick start')")
    return found


class Stack:
    """`terraform test` applying the stack and holding it until the demo is done."""

    def __init__(self, state_dir: Path, endpoint: str) -> None:
        self.state_dir = state_dir
        self.log = state_dir / "terraform.log"
        env = {
            **os.environ,
            **AWS_ENV,
            "AWS_ENDPOINT_URL": endpoint,
            "TF_IN_AUTOMATION": "1",
            "DEMO_PYTHON": sys.executable,
            "DEMO_ROOT": str(ROOT),
            "DEMO_STATE_DIR": str(state_dir),
        }
        command = [
            terraform_binary(),
            f"-chdir={ROOT / 'terraform'}",
            "test",
            "-no-color",
            f"-test-directory={os.path.relpath(DEMO_TESTS, ROOT / 'terraform')}",
        ]
        with self.log.open("wb") as log:
            # Its own session: a Ctrl-C reaches the demo, which then lets terraform destroy in order.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def outputs_file(self) -> Path:
        return self.state_dir / "outputs.json"

    def applied(self) -> bool:
        if self.process.poll() is not None:
            raise DemoError(f"terraform test ended before the stack was up:\n{self.tail()}")
        return self.outputs_file.exists()

    def release(self) -> None:
        (self.state_dir / "done").touch()

    def finished(self) -> bool:
        return self.process.poll() is not None

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self, timeout: float = 120.0) -> None:
        self.release()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGINT)  # terraform's own graceful cancel
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()


def unpack(package: Path, into: Path) -> Path:
    if not package.exists():
        raise DemoError(f"{package} is missing: run `make build` (make demo does)")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(into)
    return into


def fail(timeline: Timeline, exc: DemoError) -> None:
    timeline.event("demo", "FAILED", str(exc).splitlines()[0])
    print(str(exc), file=sys.stderr)


def teardown(stack: Stack, timeline: Timeline) -> bool:
    """Let `terraform test` destroy the stack and say whether it did (also after a failure)."""
    stack.release()
    with contextlib.suppress(DemoError):  # close() then cancels it; the line after says so
        timeline.wait("terraform destroy", stack.finished, timeout=600)
    stack.close()
    if stack.process.returncode == 0:
        timeline.event("terraform destroy", "destroyed", "every resource removed from the emulator")
        return True
    timeline.event(
        "terraform destroy",
        "FAILED",
        f"terraform test exited {stack.process.returncode}; see {stack.log.relative_to(ROOT)}",
    )
    print(stack.tail(), file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-file", type=Path, help="also write the timeline as JSON here")
    parser.add_argument("--job-seconds", type=float, default=5.0, help="how long the stand-in's job runs")
    parser.add_argument("--plain", action="store_true", help="no progress indicator (default when not a tty)")
    args = parser.parse_args(argv)

    began = time.monotonic()
    state_dir = ROOT / "build" / "demo" / time.strftime("run-%Y%m%d-%H%M%S")
    state_dir.mkdir(parents=True, exist_ok=True)
    timeline = Timeline(interactive=sys.stdout.isatty() and not args.plain)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print("gpu-autostop demo — the real stack, handlers and agent on a local AWS emulator (moto)")
    print(f"logs: {state_dir.relative_to(ROOT)}/ (terraform.log, lambda.log, agent.log, moto-server.log)")
    print("emulator overrides (moto cannot create these; the same as the emulator apply test):")
    for target in overrides():
        print(f"  - {target}")
    result: dict[str, Any] = {}
    pids: list[int] = []
    stack: Stack | None = None
    machine: Machine | None = None
    failed = False
    code = 1
    try:
        package = unpack(ROOT / "build" / "functions.zip", state_dir / "lambda")
        with moto_server(state_dir / "moto-server.log") as server:
            pids.append(server.pid)
            try:
                os.environ.update({**AWS_ENV, "AWS_ENDPOINT_URL": server.endpoint})
                timeline.event("moto server", "up", server.endpoint)
                stack = Stack(state_dir, server.endpoint)
                pids.append(stack.process.pid)
                timeline.wait('terraform apply (terraform test, run "deploy")', stack.applied, timeout=600)
                deployment = Deployment.from_outputs(json.loads(stack.outputs_file.read_text()))
                timeline.event(
                    "terraform apply",
                    "applied",
                    f"instance {deployment.instance_id}, functions "
                    + ", ".join(sorted(deployment.functions.values())),
                )
                aws_env = {**AWS_ENV, "AWS_ENDPOINT_URL": server.endpoint}
                lambdas = Lambdas(deployment, package, aws_env, state_dir / "lambda.log")
                comfyui = os.environ.get("COMFYUI_URL")
                machine = Machine(deployment, aws_env, state_dir, comfyui, args.job_seconds)
                result = run_scenario(deployment, lambdas, machine, timeline)
            except DemoError as exc:
                failed = True
                fail(timeline, exc)  # now, with its own time; the teardown follows
            finally:
                # Inside the server's block: terraform must destroy while the emulator still answers.
                if machine is not None:
                    machine.shutdown()
                if stack is not None:
                    destroyed = teardown(stack, timeline)
                    failed = failed or not destroyed
        code = 1 if failed else 0
    except DemoError as exc:
        fail(timeline, exc)
    except KeyboardInterrupt:
        timeline.event("demo", "interrupted", "everything it started is stopped")
        code = 130
    finally:
        if args.events_file:
            started = pids + (machine.pids if machine else [])
            document = {"events": timeline.events, "result": result, "pids": started}
            args.events_file.write_text(json.dumps(document, indent=2))
    wall = time.monotonic() - began
    hours = sum(result.get("session_hours", []))
    price = hourly_price("g4dn.xlarge", "us-east-1") or 0.0
    print(
        f"\ndemo {'finished' if code == 0 else 'ended'} in {wall:.0f} s; "
        f"GPU time billed: {hours * 60:.1f} minutes ≈ ${hours * price:.4f} "
        f"at g4dn.xlarge on-demand (${price}/h, us-east-1)"
    )
    if hours:
        print(
            "(the stop function's session figures; moto keeps the first LaunchTime, "
            "so they count from the apply)"
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
