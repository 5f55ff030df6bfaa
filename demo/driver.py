"""The demo's scenario: one request cycle the way the n8n workflow drives it, then a second.

Everything here is the real system against the emulator: the Lambda handlers
from build/functions.zip run in their own processes with the environment that
Terraform gave each function; the agent is the real ``autostop_agent`` pointed
at the emulator; only ComfyUI is a stand-in (or a real one with COMFYUI_URL).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from demo.standin_comfyui import StandinComfyUI

ROOT = Path(__file__).resolve().parent.parent


def demo_graph(color: int) -> dict[str, Any]:
    """A graph with real work that needs no model: about 5 s on a real ComfyUI 0.3.64 on CPU.

    ComfyUI serves a prompt identical to an earlier one from its cache in 0 s, so every run
    gets its own ``color`` (EmptyImage's colour, 0..0xFFFFFF).
    """
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 2048, "height": 2048, "batch_size": 8, "color": color},
        },
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "gpu-autostop-demo"},
        },
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoError(RuntimeError):
    """The scenario did not go as the system promises."""


@dataclass
class Timeline:
    """Prints ``time  event  decision  reason`` lines and keeps them for --events-file."""

    interactive: bool
    started: float = field(default_factory=time.monotonic)
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, name: str, decision: str = "", reason: str = "", **data: Any) -> None:
        elapsed = time.monotonic() - self.started
        self.events.append(
            {"t": round(elapsed, 2), "event": name, "decision": decision, "reason": reason, **data}
        )
        self._clear()
        print(f"{elapsed:7.1f}s  {name:<34} {decision:<16} {reason}", flush=True)

    def note(self, text: str) -> None:
        self._clear()
        print(f"{'':9}{text}", flush=True)

    def wait(self, what: str, until: Callable[[], bool], timeout: float, every: float = 0.5) -> None:
        """Poll ``until`` with a progress indicator; DemoError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        spinner = "|/-\\"
        turn = 0
        while not until():
            if time.monotonic() > deadline:
                self._clear()
                raise DemoError(f"timed out after {timeout:.0f} s waiting for: {what}")
            if self.interactive:
                left = deadline - time.monotonic()
                print(f"\r  {spinner[turn % 4]} waiting for {what} ({left:4.0f} s left)", end="", flush=True)
                turn += 1
            time.sleep(every)
        self._clear()

    def _clear(self) -> None:
        if self.interactive:
            print("\r\033[K", end="", flush=True)


@dataclass(frozen=True)
class Deployment:
    """What the applied Terraform stack says about itself."""

    region: str
    instance_id: str
    functions: dict[str, str]
    agent_state_parameter: str
    topic_arn: str
    idle_alarm_name: str

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Deployment:
        return cls(
            region=outputs["region"],
            instance_id=outputs["instance_id"],
            functions=dict(outputs["function_names"]),
            agent_state_parameter=outputs["agent_state_parameter"],
            topic_arn=outputs["alert_topic_arn"],
            idle_alarm_name=outputs["idle_alarm_name"],
        )


class Lambdas:
    """Invoke the real handlers from the built package, each in a fresh process like a cold Lambda."""

    def __init__(self, deployment: Deployment, package_dir: Path, aws_env: dict[str, str], log: Path) -> None:
        self.deployment = deployment
        self.package_dir = package_dir
        self.aws_env = aws_env
        self.log = log
        client = boto3.client("lambda", region_name=deployment.region)
        self.configs = {
            role: client.get_function_configuration(FunctionName=name)
            for role, name in deployment.functions.items()
        }

    def environment(self, role: str) -> dict[str, str]:
        return dict(self.configs[role].get("Environment", {}).get("Variables", {}))

    def invoke(self, role: str, event: Any) -> dict[str, Any]:
        config = self.configs[role]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # The built package first (as /var/task), then the repository for demo.lambda_invoke.
            "PYTHONPATH": f"{self.package_dir}{os.pathsep}{ROOT}",
            **self.aws_env,
            **self.environment(role),
            "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
        }
        with self.log.open("a") as log:
            done = subprocess.run(
                [sys.executable, "-m", "demo.lambda_invoke", config["Handler"], config["FunctionName"]],
                input=json.dumps(event),
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=120,
                check=False,
            )
        if done.returncode != 0:
            raise DemoError(f"{role} function failed (exit {done.returncode}); see {self.log}")
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer


class Machine:
    """What runs on the GPU instance while it is up: ComfyUI and the agent."""

    def __init__(
        self,
        deployment: Deployment,
        aws_env: dict[str, str],
        state_dir: Path,
        comfyui_url: str | None,
        job_s: float,
    ) -> None:
        self.deployment = deployment
        self.aws_env = aws_env
        self.state_dir = state_dir
        self.external_url = comfyui_url
        self.job_s = job_s
        self.standin: StandinComfyUI | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self._boot: threading.Timer | None = None
        #: Every process this machine started (for the demo's own clean-up check).
        self.pids: list[int] = []

    @property
    def comfyui_url(self) -> str:
        if self.external_url:
            return self.external_url.rstrip("/")
        assert self.standin is not None
        return self.standin.url

    def boot(self, comfyui_after_s: float, agent_env: dict[str, str]) -> None:
        """The instance came up: the agent starts at once, ComfyUI answers after a while."""
        port = free_port()
        url = self.external_url.rstrip("/") if self.external_url else f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT / "agent"),
            **self.aws_env,
            **agent_env,
            "COMFYUI_URL": url,
            "AGENT_ENV_FILE": str(self.state_dir / "agent.env"),
            "AGENT_LOCK_FILE": str(self.state_dir / "agent.lock"),
        }
        (self.state_dir / "agent.env").write_text("# demo: everything comes from the environment\n")
        with (self.state_dir / "agent.log").open("ab") as log:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "autostop_agent"],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # the demo stops it (a Ctrl-C goes to the demo alone)
            )
        self.pids.append(self.agent.pid)
        if not self.external_url:

            def comfyui_up() -> None:
                self.standin = StandinComfyUI(port=port, job_seconds=self.job_s)

            self._boot = threading.Timer(comfyui_after_s, comfyui_up)
            self._boot.start()

    def shutdown(self) -> None:
        """The instance stopped: everything on it ends."""
        if self._boot is not None:
            self._boot.cancel()
            self._boot.join()
            self._boot = None
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None
        if self.standin is not None:
            self.standin.close()
            self.standin = None

    def post_prompt(self, graph: dict[str, Any]) -> str:
        request = urllib.request.Request(  # noqa: S310 - loopback stand-in or the user's own ComfyUI
            self.comfyui_url + "/prompt",
            data=json.dumps({"prompt": graph, "client_id": "gpu-autostop-demo"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            prompt_id: str = json.loads(response.read())["prompt_id"]
            return prompt_id

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        with urllib.request.urlopen(f"{self.comfyui_url}/history/{prompt_id}", timeout=10) as response:  # noqa: S310
            entry: dict[str, Any] | None = json.loads(response.read()).get(prompt_id)
            return entry

    def view(self, image: dict[str, str]) -> bytes:
        query = f"filename={image['filename']}&subfolder={image.get('subfolder', '')}&type={image['type']}"
        with urllib.request.urlopen(f"{self.comfyui_url}/view?{query}", timeout=10) as response:  # noqa: S310
            data: bytes = response.read()
            return data


def alarm_event(deployment: Deployment, state: str = "ALARM") -> dict[str, Any]:
    """The payload CloudWatch sends when a composite alarm's action invokes a Lambda function."""
    account = "123456789012"
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:{deployment.region}:{account}:alarm:{deployment.idle_alarm_name}",
        "accountId": account,
        "time": now,
        "region": deployment.region,
        "alarmData": {
            "alarmName": deployment.idle_alarm_name,
            "state": {"value": state, "reason": "every idle alarm is in ALARM", "timestamp": now},
            "previousState": {"value": "OK", "reason": "", "timestamp": now},
            "configuration": {"alarmRule": "ALARM(cpu) AND ALARM(network) AND ALARM(queue) AND ALARM(gpu)"},
        },
    }


def schedule_event(deployment: Deployment) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "demo-recheck",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": deployment.region,
        "resources": [f"arn:aws:events:{deployment.region}:123456789012:rule/recheck"],
        "detail": {},
    }


def _alert(sqs: Any, queue_url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The next alert on the topic, through the demo's own SQS subscription."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=got[0]["ReceiptHandle"])
            body: dict[str, Any] = json.loads(got[0]["Body"])
            return body
    return None


def _expect(condition: bool, what: str, answer: dict[str, Any]) -> None:
    if not condition:
        raise DemoError(f"{what}; the function answered {json.dumps(answer)}")


@dataclass
class Scenario:
    deployment: Deployment
    lambdas: Lambdas
    machine: Machine
    timeline: Timeline
    agent_env: dict[str, str] = field(default_factory=dict)
    session_hours: list[float] = field(default_factory=list)

    @property
    def idle_minutes(self) -> float:
        return float(self.lambdas.environment("stop").get("IDLE_MINUTES", "10"))

    @property
    def heartbeat_s(self) -> float:
        return float(self.lambdas.environment("stop").get("HEARTBEAT_SECONDS", "60"))

    def start_until_ready(self, cycle: int) -> None:
        answer = self.lambdas.invoke("start", {"wait": "none"})
        _expect(answer.get("ok") is True and answer["started"], "start did not start the instance", answer)
        self.timeline.event(
            f"request {cycle}: start λ", "started", f"{answer['instance_type']} is {answer['state']}"
        )
        self.agent_env["BOOT_AT"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.machine.boot(comfyui_after_s=2.0, agent_env=self.agent_env)
        began = time.monotonic()
        self.timeline.wait(
            "ComfyUI to be ready (status λ)",
            lambda: bool(self.lambdas.invoke("status", {}).get("ready")),
            timeout=90,
            every=1.0,
        )
        self.timeline.event(
            "status λ", "ready", f"after {time.monotonic() - began:.1f} s (fresh agent record of this boot)"
        )

    def agent_record(self) -> dict[str, Any]:
        """The agent's state record as the functions read it (SSM), or {} while there is none."""
        ssm = boto3.client("ssm", region_name=self.deployment.region)
        try:
            value = ssm.get_parameter(Name=self.deployment.agent_state_parameter, WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            return {}
        record: dict[str, Any] = json.loads(value["Parameter"]["Value"])
        return record

    def generate(self) -> None:
        # As the n8n workflows and the client do: start before every prompt (it renews the lease).
        answer = self.lambdas.invoke("start", {"wait": "none"})
        _expect(answer.get("ok") is True, "start before the prompt failed", answer)
        self.timeline.event("start λ (before the prompt)", "lease renewed", f"instance {answer['state']}")
        before = int(self.agent_record().get("images_completed") or 0)
        posted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        color = random.randrange(0x1000000)  # noqa: S311 - defeats ComfyUI's cache, not a secret
        prompt_id = self.machine.post_prompt(demo_graph(color))
        self.timeline.event(
            "POST /prompt", "queued", f"prompt {prompt_id[:8]}… at {self.machine.comfyui_url}"
        )

        def agent_saw_the_job() -> bool:
            # Busy now, or done since the post: never depends on catching a short job in the act.
            record = self.agent_record()
            busy = int(record.get("queue_running") or 0) + int(record.get("queue_pending") or 0) > 0
            done = int(record.get("images_completed") or 0) > before
            return busy or done or str(record.get("last_activity_at") or "") >= posted

        self.timeline.wait("the agent to report the job", agent_saw_the_job, timeout=60, every=0.5)
        answer = self.lambdas.invoke("stop", alarm_event(self.deployment))
        _expect(answer.get("stopped") is False, "stop stopped the instance of a fresh request", answer)
        self.timeline.event("idle alarm → stop λ", "declined", answer["reason"])
        self.timeline.wait(
            "the image (GET /history)",
            lambda: bool((self.machine.history(prompt_id) or {}).get("status", {}).get("completed")),
            timeout=120,
            every=0.5,
        )
        entry = self.machine.history(prompt_id) or {}
        image = next(iter(entry["outputs"].values()))["images"][0]
        data = self.machine.view(image)
        self.timeline.event("GET /history, /view", "done", f"{image['filename']}: {len(data)} bytes of PNG")

    def idle_until_stopped(self, sqs: Any, inbox: str) -> None:
        answer = self.lambdas.invoke("stop", schedule_event(self.deployment))
        _expect(answer.get("stopped") is False, "stop did not wait the idle time", answer)
        self.timeline.event("schedule re-check → stop λ", "declined", answer["reason"])

        def idle_long_enough() -> bool:
            minutes = self.lambdas.invoke("status", {}).get("idle_minutes")
            return minutes is not None and float(minutes) >= self.idle_minutes

        self.timeline.wait(
            f"{self.idle_minutes:g} idle minutes",
            idle_long_enough,
            timeout=self.idle_minutes * 60 + 60,
            every=1.0,
        )
        answer = self.lambdas.invoke("stop", alarm_event(self.deployment))
        _expect(answer.get("stopped") is True, "the idle instance was not stopped", answer)
        self.timeline.event("idle alarm → stop λ", "STOPPED", answer["reason"])
        self.session_hours.append(float(answer.get("session_hours") or 0.0))
        self.machine.shutdown()
        alert = _alert(sqs, inbox)
        if alert is not None:
            self.timeline.note(f"alert email: {alert.get('Subject')}")
            for line in str(alert.get("Message", "")).splitlines():
                if line.startswith(("Why:", "Estimated session cost:")):
                    self.timeline.note(f"  {line}")
        answer = self.lambdas.invoke("stop", schedule_event(self.deployment))
        _expect(answer.get("stopped") is False, "a stopped instance was stopped again", answer)
        self.timeline.event("schedule re-check → stop λ", "nothing to do", answer["reason"])

    def emergency_stop(self) -> None:
        answer = self.lambdas.invoke("stop", {"force": True, "reason": "demo: emergency stop (make stop)"})
        _expect(answer.get("stopped") is True, "the emergency stop did not stop the instance", answer)
        self.timeline.event("emergency stop → stop λ", "STOPPED", answer["reason"])
        self.session_hours.append(float(answer.get("session_hours") or 0.0))
        self.machine.shutdown()


def run_scenario(
    deployment: Deployment, lambdas: Lambdas, machine: Machine, timeline: Timeline
) -> dict[str, Any]:
    """Drive two request cycles; returns the summary figures."""
    ec2 = boto3.client("ec2", region_name=deployment.region)
    sns = boto3.client("sns", region_name=deployment.region)
    sqs = boto3.client("sqs", region_name=deployment.region)
    inbox = sqs.create_queue(QueueName="demo-alert-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=deployment.topic_arn, Protocol="sqs", Endpoint=inbox_arn)
    scenario = Scenario(deployment, lambdas, machine, timeline)
    scenario.agent_env = {
        "AGENT_STATE_PARAMETER": deployment.agent_state_parameter,
        "INSTANCE_ID": deployment.instance_id,
        "AWS_REGION": deployment.region,
        "POLL_SECONDS": "0.5",
        "STARTUP_POLL_SECONDS": "0.2",
        "HEARTBEAT_SECONDS": f"{scenario.heartbeat_s:g}",
        "METRICS_SECONDS": "10",
        "IDLE_MINUTES": f"{scenario.idle_minutes:g}",
        "SELF_STOP_MINUTES": "0",  # the control plane stops it here; the self-stop is the agent's last resort
        "BOOT_GRACE_MINUTES": "0",
        "CPU_BUSY_PERCENT": "100",  # this machine's CPU is not the GPU instance's
        "DETECT_SESSIONS": "false",  # nor are its terminals
    }

    ec2.stop_instances(InstanceIds=[deployment.instance_id])
    timeline.event("setup", "stopped", "the instance waits stopped, as it does between requests")
    scenario.start_until_ready(1)
    scenario.generate()
    scenario.idle_until_stopped(sqs, inbox)
    scenario.start_until_ready(2)
    scenario.emergency_stop()

    state = ec2.describe_instances(InstanceIds=[deployment.instance_id])["Reservations"][0]["Instances"][0]
    final = state["State"]["Name"]
    if final != "stopped":
        raise DemoError(f"the instance ended {final}, not stopped")
    timeline.event("end", final, "nothing left running on the instance")
    return {"final_state": final, "session_hours": scenario.session_hours}
