"""Make allocated shares sum exactly to the metered total, in floating point.

"Exactly" means math.fsum(shares) == total: the correctly rounded sum of the shares is the
total. Splitting a float among batches leaves a residual of a few ulps; it is carried onto the
largest share not larger than the total (an ulp there is fine enough to land on the total), then
that share is nudged ulp by ulp until the sum closes. When no share is fine enough (large shares
of opposite sign cancelling to a small total), the best sum is kept and its residual reported.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

_TRIES = 8


def close_exactly(parts: NDArray[np.float64], total: float) -> tuple[NDArray[np.float64], float]:
    """(parts adjusted by a few ulps, fsum(parts) − total): the residual is 0.0 when closed."""
    out = np.array(parts, dtype=np.float64)
    if out.size == 0:
        return out, -total
    if math.fsum(out.tolist()) == total:
        return out, 0.0
    mag = np.abs(out)
    fine = mag <= abs(total)
    # largest fine shares first, then the coarse ones from the smallest up
    order = np.lexsort((np.where(fine, -mag, mag), ~fine))
    for j in order[:_TRIES]:
        values = out.tolist()
        values[j] += total - math.fsum(values)
        heading = 0.0
        for _ in range(64):
            s = math.fsum(values)
            if s == total:
                out[j] = values[j]
                return out, 0.0
            toward = math.inf if s < total else -math.inf
            if heading and toward != heading:
                break  # stepped over the total: this share's ulp is too coarse
            heading = toward
            values[j] = math.nextafter(values[j], toward)
    return out, math.fsum(out.tolist()) - total
