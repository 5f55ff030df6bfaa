"""The agent's rig (a stand-in ComfyUI, a fake clock) for the writer-against-reader tests."""

from tests.agent.conftest import clock, comfy, rig

__all__ = ["clock", "comfy", "rig"]
