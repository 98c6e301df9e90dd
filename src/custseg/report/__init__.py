"""The shareable report: one self-contained HTML file (``custseg report --out report.html``).

>>> from custseg.report import build_report
>>> build_report(load_config(), Path("report.html"))
"""

from custseg.report.builder import build_report, render_report, report_context

__all__ = ["build_report", "render_report", "report_context"]
