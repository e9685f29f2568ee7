"""The person crop's affine map (data_prep/crop.py)."""
from __future__ import annotations

import numpy as np


def test_invert_affine_undoes_the_crop_map():
    from data_prep.crop import apply_affine, crop_transform, invert_affine

    affine = crop_transform(400.0, 300.0, 500.0)  # scale 0.5: image (400, 300) -> crop centre (124.5, 124.5)
    assert np.allclose(apply_affine([[400.0, 300.0]], affine), [[124.5, 124.5]])
    assert np.allclose(apply_affine([[124.5, 124.5], [0.0, 0.0]], invert_affine(affine)), [[400, 300], [151, 51]])
