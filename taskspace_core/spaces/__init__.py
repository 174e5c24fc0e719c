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
* :mod:`.uncertainty` bootstrap intervals over eval pairs, split-half reliability (noise ceiling)
* :mod:`.findings` the paper's three series findings tested: trends with paired intervals and p
* :mod:`.placement` where an added task lands: nearest neighbours, best-fitting category

Every public name is re-exported here, so ``from taskspace_core.spaces import X`` works.
"""

from taskspace_core.spaces.findings import (
    Comparison,
    StabilityTest,
    Trend,
    compare_spaces,
    distributedness_trend,
    generalisation_trend,
    stability_test,
    trend_p,
)
from taskspace_core.spaces.fits import (
    DEFAULT_PERMUTATIONS,
    FitResult,
    ari_degenerate_reason,
    cluster_agreement,
    fit_hypothesis,
)
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
    PROFILE_DIAGONAL,
    ProfileDiagonal,
    SpaceError,
    SpaceWarning,
    distance_matrix,
    profile_label,
    resolve_profile_diagonal,
    scale_similarity,
    self_transfer_floor,
    symmetrise,
    symmetrise_stack,
    usable_self_transfer,
)
from taskspace_core.spaces.overlap import (
    chance_jaccard,
    jaccard_matrix,
    mask_intersections,
    overlap_lift,
    tensor_counts,
)
from taskspace_core.spaces.placement import (
    CategoryFit,
    Neighbour,
    Placement,
    added_tasks,
    best_category,
    nearest_neighbours,
    place_tasks,
    transfer_replicates,
)
from taskspace_core.spaces.series import (
    GENERALISATION_AGGREGATE,
    Distributedness,
    Generalisation,
    Stability,
    distributedness,
    generalisation,
    generalisation_parts,
    generalisation_scores,
    model_generalisation,
    stability,
)
from taskspace_core.spaces.uncertainty import (
    DEFAULT_BOOTSTRAP,
    Estimate,
    FitInterval,
    PairMargins,
    Reliability,
    TransferBootstrap,
    bootstrap_fit,
    bootstrap_transfer,
    spearman_brown,
    split_half_reliability,
)

__all__ = [
    "Comparison",
    "StabilityTest",
    "Trend",
    "compare_spaces",
    "distributedness_trend",
    "generalisation_trend",
    "stability_test",
    "trend_p",
    "generalisation_parts",
    "CategoryFit",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PERMUTATIONS",
    "Distributedness",
    "Embedding",
    "Estimate",
    "FitInterval",
    "FitResult",
    "GENERALISATION_AGGREGATE",
    "Generalisation",
    "HypothesisSpace",
    "Neighbour",
    "PairMargins",
    "Placement",
    "Reliability",
    "SpaceError",
    "SpaceWarning",
    "Stability",
    "TransferBootstrap",
    "Tree",
    "added_tasks",
    "ari_degenerate_reason",
    "best_category",
    "bootstrap_fit",
    "bootstrap_transfer",
    "chance_jaccard",
    "cluster_agreement",
    "cluster_labels",
    "cluster_order",
    "distance_matrix",
    "distributedness",
    "fit_hypothesis",
    "generalisation",
    "generalisation_scores",
    "jaccard_matrix",
    "linkage_tree",
    "mask_intersections",
    "mds_embedding",
    "model_generalisation",
    "nearest_neighbours",
    "overlap_lift",
    "place_tasks",
    "procrustes_align",
    "scale_similarity",
    "self_transfer_floor",
    "spearman_brown",
    "split_half_reliability",
    "stability",
    "symmetrise",
    "symmetrise_stack",
    "PROFILE_DIAGONAL",
    "ProfileDiagonal",
    "profile_label",
    "resolve_profile_diagonal",
    "tensor_counts",
    "transfer_replicates",
    "umap_embedding",
    "usable_self_transfer",
]
