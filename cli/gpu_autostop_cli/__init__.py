"""gpu-autostop's operator command line: ``gpu-autostop start|status|stop|generate|emergency-stop|cap``."""
