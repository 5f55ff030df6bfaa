"""gpu-autostop control plane: start, status and stop one GPU instance on demand."""

__version__ = "0.1.0"
