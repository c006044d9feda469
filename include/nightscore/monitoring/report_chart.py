"""The weekly report's chart: the week per day as a small PNG, inline in the mail."""

from __future__ import annotations

import io
import math
from base64 import b64encode
from collections.abc import Sequence

from nightscore.monitoring.report_model import BAD, MUTED, WEEKDAYS, DayPoint

CHART_SIZE_IN = (7.0, 3.0)  # at CHART_DPI: 700 x 300 px
CHART_DPI = 100


def trend_chart(days: Sequence[DayPoint], roc_auc_floor: float | None = None) -> bytes:
    """The week per day as a PNG (700 x 300 px): ROC AUC on the left; actual disruption
    rate against mean predicted risk on the right. Days without outcomes leave gaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    def series(attr: str) -> list[float]:
        return [math.nan if getattr(d, attr) is None else getattr(d, attr) for d in days]

    fig = Figure(figsize=CHART_SIZE_IN, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    x = list(range(len(days)))
    labels = [f"{WEEKDAYS[d.service_date.weekday()]}\n{d.service_date.day}" for d in days]
    auc = series("roc_auc")
    left.plot(x, auc, marker="o", color="#1f5fa8", linewidth=2)
    left.axhline(0.5, color="#999", linestyle=":", linewidth=1)
    left.text(0, 0.5, "chance", color="#999", fontsize=7, va="bottom")
    if roc_auc_floor is not None:
        left.axhline(roc_auc_floor, color=BAD, linestyle="--", linewidth=1)
        left.text(
            x[-1] if x else 0,
            roc_auc_floor,
            f"floor {roc_auc_floor:g}",
            color=BAD,
            fontsize=7,
            ha="right",
            va="bottom",
        )
    known = [v for v in auc if not math.isnan(v)]
    left.set_ylim(min([0.45, *known]) - 0.02, 1.0)
    left.set_title("ROC AUC", fontsize=10)
    actual, risk = series("disruption_rate"), series("mean_risk")
    right.plot(x, actual, marker="o", color=BAD, linewidth=2, label="actual disrupted")
    right.plot(
        x,
        risk,
        marker="s",
        color="#1f5fa8",
        linewidth=2,
        linestyle="--",
        label="mean predicted risk",
    )
    top = max([0.5, *(v for v in actual + risk if not math.isnan(v))])
    right.set_ylim(0, min(1.0, top * 1.15))
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_title("Disruption: actual vs predicted", fontsize=10)
    right.legend(fontsize=7, loc="upper left", frameon=False)
    for ax, values in ((left, auc), (right, actual)):
        ax.set_xticks(x, labels, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", color="#eee")
        ax.spines[["top", "right"]].set_visible(False)
        if all(math.isnan(v) for v in values):
            ax.text(
                0.5,
                0.5,
                "outcomes n/a",
                transform=ax.transAxes,
                ha="center",
                color=MUTED,
                fontsize=9,
            )
    fig.tight_layout(pad=0.6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + b64encode(png).decode("ascii")
