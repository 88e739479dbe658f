"""`metricpower serve`: a local web app over a runs folder.

Lists the runs, ensembles and sweeps, shows each run's six processes as interactive
charts, compares two runs or two ensembles (or sweep arms) with intervals, explains a
citizen's history and starts new runs from a preset. Starlette serves it under
uvicorn; the charts are Plotly's, drawn in the browser from the plotly.min.js that the
`plotly` package ships, served from this machine. Nothing is fetched from elsewhere.
"""

from __future__ import annotations

EXTRA = "web"


class MissingExtra(RuntimeError):
    """The optional web dependencies are not installed."""


def require() -> None:
    """Raise MissingExtra naming the extra to install when the web stack is absent."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn", "plotly", "multipart")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(
            f"metricpower serve needs the optional '{EXTRA}' extra (missing: "
            f"{', '.join(missing)}): pip install 'metricpower[{EXTRA}]'")


__all__ = ["EXTRA", "MissingExtra", "require"]
