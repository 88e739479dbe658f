"""The reports: one self-contained HTML file per run (`run`) or per comparison
(`comparison`), a section per process of metric power, each with plots and a
plain-language summary written from the numbers. Nothing is fetched when it opens: styles
are inline and plots are PNG data URIs."""

from metricpower.report.run import FIGURES, GLOSS, SECTIONS, render_report, write_report

__all__ = ["FIGURES", "GLOSS", "SECTIONS", "render_report", "write_report"]
