"""A Gantt chart of a plan as PNG (matplotlib, Agg backend): one row per channel, one bar per
unit, a colour per module, the makespan as a line. Tests: tests/edge/scheduling/test_schedule_cli.py.
"""

from __future__ import annotations

from pathlib import Path

from edge.scheduling.instance import Instance
from edge.scheduling.plan import Plan


def write_gantt(instance: Instance, plan: Plan, path: str | Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    channels = [c.id for c in instance.channels]
    modules = [m.id for m in instance.modules]
    cmap = plt.get_cmap("tab20")
    colour = {m: cmap(i % 20) for i, m in enumerate(modules)}
    height = max(2.0, 0.45 * len(channels) + 1.2)
    fig, ax = plt.subplots(figsize=(12, height))
    try:
        per = plan.by_channel()
        few = len(plan.placements) <= 80
        for row, ch in enumerate(channels):
            for p in per.get(ch, []):
                ax.barh(row, p.end_min - p.start_min, left=p.start_min, height=0.7,
                        color=colour.get(p.module_id, "grey"), edgecolor="black", linewidth=0.4)
                if few:
                    ax.text((p.start_min + p.end_min) / 2, row, p.unit_id.split(".", 1)[0],
                            ha="center", va="center", fontsize=6)
        ax.axvline(plan.makespan_min, color="red", linewidth=1)
        ax.set_yticks(range(len(channels)), channels)
        ax.invert_yaxis()
        ax.set_xlabel("time (min)")
        ax.set_title(title or f"{instance.name}: {plan.method}, makespan {plan.makespan_min} min")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
