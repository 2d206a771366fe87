"""Reports people read: the compliance report from the findings history, and the portfolio and
service reports from the metrics, rendered as self-contained HTML, Markdown, CSV, XLSX or JSON.

``compliance`` builds the compliance report's data, ``metrics_report`` the metric reports',
``render`` turns either into a format, ``charts`` draws their inline SVG charts.
"""

from __future__ import annotations
