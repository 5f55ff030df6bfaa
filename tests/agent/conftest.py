from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.helpers import ComfyStandIn, FakeClock, Rig, make_rig


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def comfy(clock: FakeClock) -> Iterator[ComfyStandIn]:
    stand_in = ComfyStandIn(clock)
    yield stand_in
    stand_in.close()


@pytest.fixture
def rig(comfy: ComfyStandIn, clock: FakeClock) -> Rig:
    return make_rig(comfy, clock)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials for moto / Stubber; no endpoint override leaks in from the environment."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
