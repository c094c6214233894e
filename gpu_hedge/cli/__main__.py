"""``python -m gpu_hedge.cli``: the ``gpu-hedge`` command."""

from gpu_hedge.cli import app

app()  # pragma: no cover
