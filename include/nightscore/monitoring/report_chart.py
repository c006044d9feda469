"""The weekly report's charts: one small PNG per chart, stacked in the mail.

Each is drawn for a phone first: a mail column is about 360 px wide there, so a chart of
600 x 420 px is shown at 0.6 of its size, and its 13-point labels (23 px at 125 dpi) come
out at about 14 px; on a desktop (up to 560 px) at 21 px. Titles and explanations are
the mail's own text, not pixels.
"""

from __future__ import annotations

import io
import math
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nightscore.monitoring.report_model import BAD, MUTED, WEEKDAYS, DayPoint, WeeklyReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHART_SIZE_IN = (4.8, 3.36)  # at CHART_DPI: 600 x 420 px
CHART_DPI = 125
LABEL_PT = 13
BLUE = "#1f5fa8"


@dataclass(frozen=True)
class Chart:
    """One chart of the report: `name` makes its `cid:`, `title` and `caption` are shown
    above and below it in the mail, `alt` stands in for it where images are blocked."""

    name: str
    title: str
    caption: str
    alt: str
    png: bytes


def week_charts(report: WeeklyReport) -> tuple[Chart, ...]:
    """The charts of the week, in the order the mail shows them."""
    return (
        Chart(
            "disruption",
            "Disrupted flights per day",
            "Red: the share of flights that were disrupted. Blue, dashed: the share the "
            "model expected (its mean predicted risk).",
            "Per day: the share of flights disrupted, and the share the model expected",
            disruption_chart(report.days),
        ),
        Chart(
            "auc",
            "How well the model ranked the flights, per day (AUC)",
            "AUC is the chance that a disrupted flight got a higher risk than an on-time one: "
            "0.5 is guessing, 1 is perfect."
            + (
                f" Below the red line ({report.roc_auc_floor:g}) an alert is raised."
                if report.roc_auc_floor is not None
                else ""
            ),
            "Per day: the model's AUC",
            auc_chart(report.days, report.roc_auc_floor),
        ),
    )


def _series(days: Sequence[DayPoint], attr: str) -> list[float]:
    return [math.nan if getattr(d, attr) is None else getattr(d, attr) for d in days]


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=CHART_SIZE_IN, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _days_axis(
    ax: Axes, days: Sequence[DayPoint], values: list[float], note_y: float = 0.5
) -> None:
    """Days on the x axis; when `values` has no point at all, a note at height `note_y`
    (a fraction of the axes) where no other line runs."""
    x = list(range(len(days)))
    labels = [f"{WEEKDAYS[d.service_date.weekday()]}\n{d.service_date.day}" for d in days]
    ax.set_xticks(x, labels, fontsize=LABEL_PT)
    ax.set_xlim(-0.4, max(len(days) - 0.6, 0.4))
    ax.tick_params(axis="y", labelsize=LABEL_PT)
    ax.grid(axis="y", color="#e6e6e6")
    ax.spines[["top", "right"]].set_visible(False)
    if all(math.isnan(v) for v in values):
        ax.text(
            0.5,
            note_y,
            "outcomes not in yet",
            transform=ax.transAxes,
            ha="center",
            color=MUTED,
            fontsize=LABEL_PT,
        )


def _png(fig) -> bytes:
    fig.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return buffer.getvalue()


def disruption_chart(days: Sequence[DayPoint]) -> bytes:
    """Per day, the share of flights disrupted against the mean predicted risk (PNG,
    600 x 420 px). Days without outcomes leave gaps."""
    from matplotlib.ticker import PercentFormatter

    fig, ax = _figure()
    x = list(range(len(days)))
    actual, risk = _series(days, "disruption_rate"), _series(days, "mean_risk")
    ax.plot(x, actual, marker="o", color=BAD, linewidth=2.5, label="disrupted")
    ax.plot(x, risk, marker="s", color=BLUE, linewidth=2.5, linestyle="--", label="expected")
    top = max([0.5, *(v for v in actual + risk if not math.isnan(v))])
    ax.set_ylim(0, min(1.0, top * 1.2))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(fontsize=LABEL_PT, loc="upper left", frameon=False, ncol=2)
    # Below the expected line: a risk of under 7 % is rare for a whole day.
    _days_axis(ax, days, actual, note_y=0.06)
    return _png(fig)


def auc_chart(days: Sequence[DayPoint], roc_auc_floor: float | None = None) -> bytes:
    """Per day, the model's ROC AUC, with chance (0.5) and the alert floor (PNG,
    600 x 420 px). Days without outcomes leave gaps."""
    fig, ax = _figure()
    x = list(range(len(days)))
    auc = _series(days, "roc_auc")
    ax.plot(x, auc, marker="o", color=BLUE, linewidth=2.5)
    ax.axhline(0.5, color="#999", linestyle=":", linewidth=1.5)
    ax.text(-0.3, 0.5, "guessing", color="#777", fontsize=LABEL_PT, va="bottom")
    if roc_auc_floor is not None:
        ax.axhline(roc_auc_floor, color=BAD, linestyle="--", linewidth=1.5)
    known = [v for v in auc if not math.isnan(v)]
    ax.set_ylim(min([0.45, *known]) - 0.02, 1.0)
    _days_axis(ax, days, auc)
    return _png(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + b64encode(png).decode("ascii")
