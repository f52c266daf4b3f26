"""A small HTML report of an evaluation: a bar chart (PNG) of base vs tuned per metric, and a table.

Shared by the dense and sparse evaluate stages: ``write_report(folder, ...)`` writes
``report.html`` and ``metrics.png`` into the stage folder.
"""

from __future__ import annotations

import html
from pathlib import Path

REPORT_FILE = "report.html"
CHART_FILE = "metrics.png"
METRIC_ORDER = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100")


def ordered(metrics: dict[str, float]) -> list[str]:
    """The usual metrics first, in the usual order, then any others."""
    return [m for m in METRIC_ORDER if m in metrics] + [m for m in metrics if m not in METRIC_ORDER]


def write_chart(path: Path, base: dict[str, float], tuned: dict[str, float], title: str) -> Path:
    """Grouped bars, base vs tuned, one group per metric (0-100 scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ordered(base)
    positions = range(len(metrics))
    width = 0.38
    figure, axes = plt.subplots(figsize=(max(4.0, 1.3 * len(metrics) + 1.5), 3.6), dpi=110)
    base_bars = axes.bar([p - width / 2 for p in positions], [base[m] * 100 for m in metrics], width, label="base")
    tuned_bars = axes.bar(
        [p + width / 2 for p in positions], [tuned.get(m, 0.0) * 100 for m in metrics], width, label="tuned"
    )
    axes.bar_label(base_bars, fmt="%.1f", fontsize=7)
    axes.bar_label(tuned_bars, fmt="%.1f", fontsize=7)
    axes.set_xticks(list(positions), metrics)
    axes.set_ylim(0, 110)
    axes.set_ylabel("score (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_report(
    folder: Path,
    *,
    title: str,
    base: dict[str, float],
    tuned: dict[str, float],
    decided_by: str,
    accepted: bool,
    reason: str,
    extra: dict[str, dict[str, float]] | None = None,
    searched_in: str = "",
) -> list[str]:
    """Write ``report.html`` and ``metrics.png`` in ``folder``; return their names (stage outputs).

    ``searched_in``: the search base and tuned were compared in, when not the models alone.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_chart(folder / CHART_FILE, base, tuned, f"{title}: base vs tuned ({decided_by})")
    rows = "\n".join(
        f"<tr><td>{html.escape(m)}</td><td>{base[m] * 100:.2f}</td><td>{tuned.get(m, float('nan')) * 100:.2f}</td>"
        f"<td>{(tuned.get(m, float('nan')) - base[m]) * 100:+.2f}</td></tr>"
        for m in ordered(base)
    )
    extra_rows = "\n".join(
        f"<li>{html.escape(name)}: " + ", ".join(f"{k}={v * 100:.2f}" for k, v in metrics.items()) + "</li>"
        for name, metrics in (extra or {}).items()
    )
    verdict = "ACCEPTED" if accepted else "REJECTED"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: evaluation</title>
<style>body{{font-family:sans-serif;max-width:52rem;margin:2rem auto}}td,th{{padding:.2rem .8rem;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.ok{{color:#176317}}.no{{color:#a01c1c}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Decided by <b>{html.escape(decided_by)}</b> queries{html.escape(f", compared in {searched_in}" if searched_in else "")}.
Gate: <b class="{"ok" if accepted else "no"}">{verdict}</b>: {html.escape(reason)}</p>
<img src="{CHART_FILE}" alt="bar chart of base vs tuned per metric">
<table><tr><th>metric</th><th>base</th><th>tuned</th><th>change</th></tr>
{rows}
</table>
{f"<h2>Also measured</h2><ul>{extra_rows}</ul>" if extra_rows else ""}
</body></html>
"""
    (folder / REPORT_FILE).write_text(page, encoding="utf-8")
    return [REPORT_FILE, CHART_FILE]
