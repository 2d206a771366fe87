"""Criterion weights from an AHP pairwise-comparison matrix (Saaty): the principal eigenvector,
the consistency ratio, and, when the ratio is over 0.1, the judgements most at odds with the
weights they produce."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Saaty's random consistency index for n = 1..15 (Saaty 1980; Alonso and Lamata 2006 agree to
# two decimals for n <= 10).
RANDOM_INDEX = [
    0.0,
    0.0,
    0.58,
    0.90,
    1.12,
    1.24,
    1.32,
    1.41,
    1.45,
    1.49,
    1.51,
    1.48,
    1.56,
    1.57,
    1.59,
]
CR_LIMIT = 0.1


@dataclass
class AhpResult:
    weights: list[float]
    lambda_max: float
    ci: float
    cr: float | None
    inconsistent: list[tuple[str, str, float, float]] = field(default_factory=list)
    """(row, column, the judgement given, the ratio the weights imply), worst first."""
    warning: str | None = None


def weights(matrix: Sequence[Sequence[float]], names: Sequence[str] | None = None) -> AhpResult:
    """The priority vector of a positive reciprocal matrix and its consistency."""
    import numpy as np

    a = np.array(matrix, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n) or n == 0:
        raise ValueError("the pairwise matrix must be square")
    labels = list(names) if names else [str(i + 1) for i in range(n)]
    for i in range(n):
        if not math.isclose(a[i, i], 1.0):
            raise ValueError(f"the diagonal must be 1 ({labels[i]} compared with itself)")
        for j in range(i + 1, n):
            if not math.isclose(a[i, j] * a[j, i], 1.0, rel_tol=1e-3):
                raise ValueError(
                    f"the matrix is not reciprocal: {labels[i]}/{labels[j]} = {a[i, j]:g} but "
                    f"{labels[j]}/{labels[i]} = {a[j, i]:g} (should be {1 / a[i, j]:.4g})"
                )
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    vector = np.abs(vectors[:, k].real)
    w = vector / vector.sum()
    lam = float(values[k].real)
    ci = (lam - n) / (n - 1) if n > 1 else 0.0
    ri = RANDOM_INDEX[n - 1] if n - 1 < len(RANDOM_INDEX) else RANDOM_INDEX[-1]
    cr = ci / ri if ri > 0 else None
    result = AhpResult([float(x) for x in w], lam, float(ci), None if cr is None else float(cr))
    if cr is not None and cr > CR_LIMIT:
        errors = []
        for i in range(n):
            for j in range(i + 1, n):
                implied = float(w[i] / w[j])
                errors.append(
                    (
                        abs(math.log(a[i, j] / implied)),
                        labels[i],
                        labels[j],
                        float(a[i, j]),
                        implied,
                    )
                )
        errors.sort(reverse=True)
        worst = [(r, c, given, implied) for _e, r, c, given, implied in errors[:3]]
        result.inconsistent = worst
        pairs = "; ".join(
            f"{r} vs {c}: judged {given:.3g}, the weights imply {implied:.3g}"
            for r, c, given, implied in worst
        )
        result.warning = (
            f"consistency ratio {cr:.3f} is over {CR_LIMIT}: revisit the most inconsistent "
            f"judgements ({pairs})"
        )
    return result
