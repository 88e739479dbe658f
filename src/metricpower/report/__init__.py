"""The reports: one self-contained HTML file per run (`run`) or per comparison
(`comparison`), a section per process of metric power, each with figures and a
plain-language summary written from the numbers. Nothing is fetched when it opens: styles
are inline and figures are SVG data URIs (`svg`), labelled from `labels`. `plot` draws one
figure of a run, as `Run.plot` does in a notebook."""

from metricpower.report.run import (
    FIGURES,
    GLOSS,
    SECTIONS,
    contents,
    plot,
    render_report,
    write_report,
)

__all__ = ["FIGURES", "GLOSS", "SECTIONS", "contents", "plot", "render_report",
           "write_report"]
