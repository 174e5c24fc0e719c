"""Tests for taskspace_core.spaces.hypotheses: hypothesis spaces from labels and validated uploads."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from taskspace_core.spaces import HypothesisSpace, SpaceError

# ---------------------------------------------------------------------------
# section 6: hypothesis spaces and validation
# ---------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d"]


def test_hypothesis_from_labels():
    H = HypothesisSpace.from_labels("category", NAMES, ["x", "x", "y", "y"])
    np.testing.assert_array_equal(H.matrix, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    assert H.labels == ("x", "x", "y", "y") and H.is_binary
    H2 = HypothesisSpace.from_labels("category", NAMES, {"a": "x", "b": "x", "c": "y", "d": "y"})
    np.testing.assert_array_equal(H.matrix, H2.matrix)
    with pytest.raises(SpaceError, match="no 'field' label: c"):
        HypothesisSpace.from_labels("field", NAMES, ["x", "x", "", "y"])
    with pytest.raises(SpaceError, match="3 'field' labels for 4 tasks"):
        HypothesisSpace.from_labels("field", NAMES, ["x", "x", "y"])


def _frame(values: list[list[object]], rows: list[str], cols: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(values, index=rows, columns=cols or rows)


GOOD = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]


def test_uploaded_matrix_ok_reordered_and_from_csv(tmp_path):
    df = _frame(GOOD, NAMES)
    H, warns = HypothesisSpace.from_matrix(df, NAMES, name="my idea")
    assert warns == [] and H.name == "my idea"
    assert np.isnan(np.diag(H.matrix)).all()  # diagonal ignored
    # a 0/1 matrix whose 1s form groups yields labels (so ARI can be computed)
    assert H.labels is not None and H.labels[0] == H.labels[1] != H.labels[2] == H.labels[3]
    # rows/columns in another order are put in task order
    order = ["d", "b", "a", "c"]
    H2, _ = HypothesisSpace.from_matrix(df.loc[order, order], NAMES)
    np.testing.assert_array_equal(H2.matrix, H.matrix)
    path = tmp_path / "h.csv"
    df.to_csv(path)
    H3, _ = HypothesisSpace.from_matrix(str(path), NAMES)
    np.testing.assert_array_equal(H3.matrix, H.matrix)
    H4, _ = HypothesisSpace.from_matrix(io.StringIO(df.to_csv()), NAMES)
    np.testing.assert_array_equal(H4.matrix, H.matrix)


def test_uploaded_matrix_not_square():
    df = pd.DataFrame(np.zeros((4, 3)), index=NAMES, columns=NAMES[:3])
    with pytest.raises(SpaceError, match="4 rows and 3 columns; it must be square"):
        HypothesisSpace.from_matrix(df, NAMES)


def test_uploaded_matrix_name_mismatch_names_the_names():
    df = _frame(GOOD, ["a", "b", "C ", "d"])
    with pytest.raises(SpaceError) as err:
        HypothesisSpace.from_matrix(df, NAMES)
    msg = str(err.value)
    assert "missing tasks: c" in msg and "names that are not tasks: C " in msg
    assert "did you mean 'C ' -> 'c'" in msg
    df = _frame(GOOD, ["a", "b", "c", "zz"])
    with pytest.raises(SpaceError, match="missing tasks: d; names that are not tasks: zz"):
        HypothesisSpace.from_matrix(df, NAMES)


def test_uploaded_matrix_asymmetric_is_symmetrised_with_warning():
    vals = [[0, 0.8, 0.2, 0.0], [0.6, 0, 0.1, 0.0], [0.2, 0.1, 0, 0.5], [0.0, 0.0, 0.5, 0]]
    H, warns = HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)
    assert len(warns) == 1 and "not symmetric" in warns[0] and "'a' and 'b'" in warns[0]
    assert H.matrix[0, 1] == pytest.approx((0.8 + 0.6) / 2) == H.matrix[1, 0]
    assert H.labels is None and not H.is_binary


def test_uploaded_matrix_non_numeric():
    vals: list[list[object]] = [[1, 1, 0, 0], [1, 1, "same", 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    with pytest.raises(SpaceError, match="row 'b', column 'c': 'same'"):
        HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)


def test_uploaded_matrix_non_numeric_diagonal_is_ignored():
    vals: list[list[object]] = [["-", 1, 0, 0], [1, "-", 0, 0], [0, 0, "-", 1], [0, 0, 1, "-"]]
    H, warns = HypothesisSpace.from_matrix(_frame(vals, NAMES), NAMES)
    assert warns == [] and H.is_binary
