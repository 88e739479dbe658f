"""The reports: one self-contained HTML file per run (`run`) or per comparison
(`comparison`), a section per process of metric power, each with figures and a
plain-language summary written from the numbers. Nothing is fetched when it opens: styles
are inline and figures are SVG data URIs (`svg`), labelled from `labels`. `plot` draws one
figure of a run, as `Run.plot` does in a notebook.

The names below load `report.run` (and the metrics) when first used, so that reading
`report.labels` (the command line does) costs only the labels."""

from importlib import import_module

__all__ = ["FIGURES", "GLOSS", "SECTIONS", "contents", "plot", "render_report",
           "write_report"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'metricpower.report' has no attribute {name!r}")
    value = getattr(import_module("metricpower.report.run"), name)
    globals()[name] = value
    return value
