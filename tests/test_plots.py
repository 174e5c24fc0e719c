"""Figures: structure, escaping of user text, diverging scales, sliders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from taskspace_core import plots, spaces
from tests.fixtures_spaces import make_space


def _sp():
    return make_space("135M", 135_000_000, 2000, seed=3)


def test_heatmap_bands_hover_and_escaping() -> None:
    sp = _sp()
    ex = [(t.example_good, t.example_bad) for t in sp.tasks]
    order = spaces.cluster_order(spaces.symmetrise(sp.T))
    fig = plots.task_heatmap(sp.T, sp.names, sp.labels("category"), value_label="T", order=order, examples=ex)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    main = heat[0]
    assert np.asarray(main.z).shape == (8, 8)
    assert main.zmid == 0 and main.zmin == -main.zmax  # diverging, centred at 0
    assert list(main.x) == [sp.names[i] for i in order]
    hover = "".join(str(c) for row in main.text for c in row)
    assert "&lt;b&gt;dogs&lt;/b&gt;" in hover and "<b>dogs</b>" not in hover  # user markup escaped
    assert "Mary saw herself." in hover
    assert len(heat) == 3  # main + two category bands
    legend = {t.name for t in fig.data if isinstance(t, go.Scatter)}
    assert legend == set(sp.labels("category"))


def test_heatmap_sequential_for_overlap() -> None:
    sp = _sp()
    fig = plots.task_heatmap(sp.J, sp.names, sp.labels("category"), diverging=False, clip_diagonal=True)
    main = fig.data[0]
    assert main.zmid is None and main.zmax < 1.0  # the diagonal (1.0) does not set the range


def test_embedding_slider_frames() -> None:
    sp = _sp()
    rng = np.random.default_rng(0)
    layouts = [(f"step {s}", rng.normal(size=(8, 2))) for s in (0, 1000, 2000)]
    fig = plots.embedding_figure(layouts, sp.names, sp.labels("category"), hover=["h"] * 8)
    assert len(fig.frames) == 3
    assert len(fig.layout.sliders[0].steps) == 3
    assert len(fig.data) == 4  # one trace per category
    single = plots.embedding_figure(layouts[:1], sp.names, sp.labels("field"))
    assert not single.frames and not single.layout.sliders


def test_dendrogram_leaves() -> None:
    sp = _sp()
    S = spaces.symmetrise(sp.T)
    tree = spaces.linkage_tree(S, sp.names)
    fig = plots.dendrogram_figure(tree.linkage, sp.names, sp.labels("category"))
    assert [t.split(">")[1].split("<")[0] for t in fig.layout.yaxis.ticktext] == list(tree.ordered_names)
    assert sum(len(t.y) for t in fig.data[1:]) == 8


def test_placed_tasks_are_highlighted_in_map_and_tree() -> None:
    sp = _sp()
    coords = np.random.default_rng(1).normal(size=(8, 2))
    fig = plots.embedding_figure([("m", coords)], sp.names, sp.labels("category"), highlight=["det_noun_2"])
    ring = [t for t in fig.data if t.name == "added"]
    assert len(ring) == 1 and list(ring[0].x) == [coords[3, 0]] and list(ring[0].y) == [coords[3, 1]]
    tree = spaces.linkage_tree(spaces.symmetrise(sp.T), sp.names)
    fig = plots.dendrogram_figure(tree.linkage, sp.names, sp.labels("category"), highlight=["npi_only"])
    leaf = tree.ordered_names.index("npi_only")
    (ring,) = [t for t in fig.data if t.name == "added"]
    assert list(ring.y) == [5 + 10 * leaf]  # on the placed task's leaf
    bold = [t for t in fig.layout.yaxis.ticktext if "<b>" in t]
    assert len(bold) == 1 and "npi_only" in bold[0]
    plain = plots.embedding_figure([("m", coords)], sp.names, sp.labels("category"))
    assert not [t for t in plain.data if t.name == "added"]


def test_mask_location_and_small_multiples() -> None:
    sp = _sp()
    d = sp.mask_distribution[sp.names[0]]
    fig = plots.mask_location_figure(d)
    assert np.asarray(fig.data[0].z).shape == (len(d["layers"]), len(d["modules"]))
    fig2 = plots.small_multiples([("a", sp.lift_per_tensor), ("b", sp.lift_per_tensor)], sp.names, n_cols=2)
    assert len(fig2.data) == 2 and fig2.layout.coloraxis.cmax > 0


def test_series_lines_and_fit_bars() -> None:
    df = pd.DataFrame(
        {"size": ["135M"] * 3 + ["360M"] * 3, "step": [0, 1, 2] * 2, "y": np.arange(6.0), "pairs": ["within"] * 6}
    )
    fig = plots.series_lines(df, x="step", y="y", group="size", dash="pairs")
    assert len(fig.data) == 2
    fits = pd.DataFrame(
        {
            "model": ["m1", "m2"],
            "level": ["category"] * 2,
            "spearman": [0.5, 0.6],
            "mantel_p": [0.01, 0.2],
            "n_tasks": [8, 8],
        }
    )
    bars = plots.fit_bars(fits)
    assert list(bars.data[0].text) == ["p=0.01", "p=0.2"]


def test_category_colors_stable() -> None:
    c = plots.category_colors(["a", "b", "a", "c"])
    assert list(c) == ["a", "b", "c"] and len(set(c.values())) == 3
