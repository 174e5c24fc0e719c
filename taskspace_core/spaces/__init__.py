"""Task spaces: symmetrisation, overlap, hypothesis spaces, statistics, embeddings, trees.

Implements METHODS.md sections 4 (symmetric views of the transfer matrix T), 5 (mask
Jaccard and overlap lift), 6 (hypothesis spaces, fit statistics, series statistics and
their uncertainty) and 7 (MDS/UMAP layouts, Procrustes alignment, dendrograms). Pure
numpy/scipy/scikit-learn; no torch, no Streamlit. Modules, by what they hold:

* :mod:`.matrices` validation, scaling, distances, ``symmetrise`` (conventions in its docstring)
* :mod:`.overlap` mask Jaccard, chance Jaccard, overlap lift
* :mod:`.hypotheses` hypothesis spaces from labels or an uploaded matrix
* :mod:`.fits` fit statistics with permutation p-values (Spearman, within-minus-between, ARI)
* :mod:`.series` generalisation, distributedness, stability
* :mod:`.geometry` MDS/UMAP, Procrustes, linkage trees, clusters

Every public name is re-exported here, so ``from taskspace_core.spaces import X`` works.
"""

from taskspace_core.spaces.fits import DEFAULT_PERMUTATIONS, FitResult, fit_hypothesis
from taskspace_core.spaces.geometry import (
    Embedding,
    Tree,
    cluster_labels,
    cluster_order,
    linkage_tree,
    mds_embedding,
    procrustes_align,
    umap_embedding,
)
from taskspace_core.spaces.hypotheses import HypothesisSpace
from taskspace_core.spaces.matrices import (
    SpaceError,
    SpaceWarning,
    distance_matrix,
    scale_similarity,
    symmetrise,
)
from taskspace_core.spaces.overlap import (
    chance_jaccard,
    jaccard_matrix,
    mask_intersections,
    overlap_lift,
    tensor_counts,
)
from taskspace_core.spaces.series import (
    Distributedness,
    Stability,
    distributedness,
    generalisation_scores,
    model_generalisation,
    stability,
)

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "Distributedness",
    "Embedding",
    "FitResult",
    "HypothesisSpace",
    "SpaceError",
    "SpaceWarning",
    "Stability",
    "Tree",
    "chance_jaccard",
    "cluster_labels",
    "cluster_order",
    "distance_matrix",
    "distributedness",
    "fit_hypothesis",
    "generalisation_scores",
    "jaccard_matrix",
    "linkage_tree",
    "mask_intersections",
    "mds_embedding",
    "model_generalisation",
    "overlap_lift",
    "procrustes_align",
    "scale_similarity",
    "stability",
    "symmetrise",
    "tensor_counts",
    "umap_embedding",
]
