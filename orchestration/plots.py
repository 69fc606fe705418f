"""Attach PNG plots to Dagster metadata so they render in the UI."""
from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg


def png_markdown(paths: dict[str, Path]) -> dg.MetadataValue:
    """One markdown block with the images inlined (the UI shows them on the materialization)."""
    parts = []
    for title, path in paths.items():
        encoded = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})")
    return dg.MetadataValue.md("\n\n".join(parts))
