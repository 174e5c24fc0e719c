"""Figures of task spaces: data in, plotly Figure out (no I/O, no Streamlit).

Every function takes plain arrays / lists / DataFrames and returns a
:class:`plotly.graph_objects.Figure`. Text that came from users (task names,
descriptions, example sentences) is HTML-escaped before it goes into hover text,
because plotly renders a subset of HTML there.
"""

from __future__ import annotations

from taskspace_core.plots.heatmaps import mask_location_figure, small_multiples, task_heatmap
from taskspace_core.plots.maps import embedding_figure
from taskspace_core.plots.statistics import base_bars, fit_bars, learning_curves, series_lines
from taskspace_core.plots.style import DIVERGING, SEQUENTIAL, category_colors, esc
from taskspace_core.plots.tokens import surprisal_figure
from taskspace_core.plots.trees import dendrogram_figure

__all__ = [
    "DIVERGING",
    "SEQUENTIAL",
    "base_bars",
    "category_colors",
    "dendrogram_figure",
    "embedding_figure",
    "esc",
    "fit_bars",
    "learning_curves",
    "mask_location_figure",
    "series_lines",
    "small_multiples",
    "surprisal_figure",
    "task_heatmap",
]
