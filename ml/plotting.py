"""One way to write a matplotlib figure to a PNG file (the plots of every asset and MLflow run)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for Dagster / MLflow, never windows
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(figure, path: Path, dpi: int = 110) -> Path:
    """Lay out, write (creating the folder) and close `figure`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
