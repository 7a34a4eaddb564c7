"""Classification data for architecture search: scikit-learn's digits by default, or your arrays.

:func:`digits` is scikit-learn's ``load_digits`` (1,797 images of 8 x 8 pixels, 10
classes, shipped inside the scikit-learn wheel: no download), scaled to [0, 1] and
shaped ``(8, 8, 1)``, with a fixed split (a permutation by ``numpy``'s
``default_rng(0)``): 1,079 training, 359 validation and 359 test images. Search
fitness is validation accuracy; test accuracy is reported for the final choice only.

:func:`as_dataset` turns what a user passes into a :class:`Dataset`: ``None`` (the
digits), a :class:`Dataset`, or ``(x, y)`` arrays (split 60/20/20 the same fixed way).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

SPLIT = (0.6, 0.2, 0.2)


class Dataset(NamedTuple):
    """Train / validation / test arrays: ``x`` float32 ``(n, *input_shape)``, ``y`` int32 ``(n,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1


def split(x: Any, y: Any, fractions: tuple[float, float, float] = SPLIT, seed: int = 0) -> Dataset:
    """``(x, y)`` shuffled by ``default_rng(seed)`` and split into train/validation/test by ``fractions``."""
    x, y = check_arrays(x, y)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    n = x.shape[0]
    n_val, n_test = int(round(n * fractions[1])), int(round(n * fractions[2]))
    n_train = n - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(f"{n} examples are too few to split into train/validation/test ({fractions})")
    order = np.random.default_rng(seed).permutation(n)
    x, y = x[order], y[order]
    a, b = n_train, n_train + n_val
    return Dataset(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def digits() -> Dataset:
    """scikit-learn's 8 x 8 digits, ``(8, 8, 1)`` in [0, 1], with the fixed split (module docstring)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency of the nas extra
        raise ImportError(
            "the default NAS dataset is scikit-learn's digits: pip install 'neuroevo[nas]' "
            "(or pass your own (x, y) arrays)"
        ) from e
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return split(x, data.target)


def check_arrays(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as float32 with a leading example axis, ``y`` as int32 class labels >= 0; else ``ValueError``."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2:
        raise ValueError(
            f"x must have a leading example axis and at least one feature axis, got shape {x.shape}"
        )
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"x must be numbers, got dtype {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must hold one label per example: x has shape {x.shape}, y has shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise ValueError(f"y must be integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"class labels must be >= 0, got {int(y.min())}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x holds NaN or infinite values")
    return x.astype(np.float32), y.astype(np.int32)


def as_dataset(data: Any) -> Dataset:
    """``None`` (the digits), a :class:`Dataset` (checked), or ``(x, y)`` (split with :func:`split`)."""
    if data is None:
        return digits()
    if isinstance(data, Dataset):
        parts = [check_arrays(data[i], data[i + 1]) for i in (0, 2, 4)]
        shapes = {p[0].shape[1:] for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"train, validation and test examples have different shapes: {sorted(shapes)}")
        return Dataset(*[a for p in parts for a in p])
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return split(*data)
    raise ValueError(
        "data must be None (scikit-learn's digits), a neuroevo.nas.Dataset or a pair (x, y) of arrays, "
        f"got {type(data)}"
    )


def check_fits(space: Any, data: Dataset) -> tuple[int, ...]:
    """The examples' shape, after checking that ``space`` takes it and has an output for every label."""
    shape = space.check_input(data.input_shape)
    if data.num_classes > space.num_classes:
        raise ValueError(
            f"the data has labels up to {data.num_classes - 1} but the space has "
            f"num_classes={space.num_classes}"
        )
    return shape
