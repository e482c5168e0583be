"""Declared parameter constraints for archlab's estimators (scikit-learn's habit, kept small).

Each estimator lists ``_constraints = {"k": Interval(int, 1, None), "score": OneOf("knn", ...)}``
and calls :func:`validate_params` at the start of ``fit``; errors read
``The 'k' parameter of ShiftScore must be an int in the range [1, inf); got 0.``
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from archlab.errors import ArchlabError


class InvalidParameterError(ArchlabError, ValueError):
    """An estimator parameter outside its declared constraint."""


class NotFittedError(ArchlabError, AttributeError):
    """An estimator used before ``fit``."""


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) in ``[low, high]`` (``None``: unbounded); ``open`` ends
    are excluded."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if self.kind is float and not isinstance(value, numbers.Real):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.open_high and value == self.high)))

    def __str__(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.open_low or self.low is None else "["
        right = ")" if self.open_high or self.high is None else "]"
        return f"{'an int' if self.kind is int else 'a float'} in the range {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    options: tuple[Any, ...]

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", tuple(options))

    def accepts(self, value: Any) -> bool:
        return value in self.options

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


def validate_params(estimator: Any) -> None:
    """Check every declared constraint of ``estimator``'s current parameters."""
    for name, constraint in type(estimator)._constraints.items():
        value = getattr(estimator, name)
        if not constraint.accepts(value):
            raise InvalidParameterError(f"The {name!r} parameter of {type(estimator).__name__} must be "
                                        f"{constraint}; got {value!r}.")


def check_is_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` naming the estimator unless ``fit`` has set ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet; call 'fit' "
                             "with a reference set of embeddings before using it.")
