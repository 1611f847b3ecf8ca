"""PNG charts of an analysis for notebooks and reports (optional extra 'plot':
matplotlib)."""

from __future__ import annotations

from pathlib import Path

from finmodel.errors import ExportError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ExportError("PNG charts need matplotlib: pip install 'finmodel[plot]'") from None
    return plt


def check_plotting() -> None:
    """Raise :class:`ExportError` now, before any work, when matplotlib is missing."""
    _pyplot()


def chart_names(an) -> list[str]:
    """The PNG files an analysis has charts for: tornado.png, grid.png, monte_carlo.png."""
    return [f"{k}.png" for k, v in (("tornado", an.tornado), ("grid", an.grid),
                                     ("monte_carlo", an.monte_carlo)) if v is not None]


def save_pngs(an, folder: str | Path) -> list[Path]:
    """Write tornado.png, grid.png and monte_carlo.png (those the analysis has)."""
    return [save_png(an, name, Path(folder) / name) for name in chart_names(an)]


def save_png(an, name: str, path: str | Path) -> Path:
    """Write one chart of :func:`chart_names` to ``path``."""
    plt = _pyplot()
    path = Path(path)
    if name == "tornado.png":
        t = an.tornado.iloc[::-1]
        base = t.attrs["base"]
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(t)))
        ax.barh(t["input"], t["metric_low"] - base, left=base, color="#C0504D", label="low")
        ax.barh(t["input"], t["metric_high"] - base, left=base, color="#4F81BD", label="high")
        ax.axvline(base, color="black", lw=0.8)
        ax.set_xlabel(f"{an.metric} of {an.strategy} (USD)")
        ax.legend(loc="lower right")
    elif name == "grid.png":
        g = an.grid
        fig, ax = plt.subplots(figsize=(7, 5))
        im = ax.imshow(g.to_numpy() / 1e6, cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(len(g.columns)), [f"{x:,.0f}" for x in g.columns])
        ax.set_yticks(range(len(g.index)), [f"{y:,.0f}" for y in g.index])
        ax.set_xlabel(g.columns.name)
        ax.set_ylabel(g.index.name)
        fig.colorbar(im, label=f"{an.metric} (USD M)")
    elif name == "monte_carlo.png":
        values = an.monte_carlo.samples.xs(an.metric, axis=1, level="metric")
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for s in values.columns:
            ax.hist(values[s].dropna() / 1e6, bins=50, alpha=0.5, label=s)
        ax.set_xlabel(f"{an.metric} (USD M)")
        ax.set_ylabel("scenarios")
        ax.legend()
    else:
        raise ExportError(f"no chart named {name!r}; expected one of tornado.png, grid.png, "
                          "monte_carlo.png")
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path
