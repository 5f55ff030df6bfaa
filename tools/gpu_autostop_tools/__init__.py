"""gpu-autostop's offline tools: the calculator, the policy simulator, price refresh, sample traces."""
