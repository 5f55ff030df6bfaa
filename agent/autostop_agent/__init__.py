"""gpu-autostop on-instance agent: readiness, activity, metrics and a last-line self-stop."""

__version__ = "0.1.0"
