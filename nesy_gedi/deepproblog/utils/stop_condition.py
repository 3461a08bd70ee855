"""Stop conditions of ``train_model`` (DeepProbLog's ``deepproblog.utils.stop_condition``).

``train_model`` asks ``is_stop(train_object)`` before every update; conditions on a metric read the series that
training logs (``train_object.logger``: ``loss`` every ``log_iter`` iterations, and whatever ``test`` returns).
``a | b`` (or ``a + b``) stops when either does, ``a & b`` (or ``a * b``) when both do.
"""

from __future__ import annotations


class StopCondition:
    def is_stop(self, train_object) -> bool:
        raise NotImplementedError

    def __or__(self, other: "StopCondition") -> "Or":
        return Or(self, other)

    __add__ = __or__

    def __and__(self, other: "StopCondition") -> "And":
        return And(self, other)

    __mul__ = __and__


class EpochStop(StopCondition):
    """Stop after ``max_epoch`` epochs."""

    def __init__(self, max_epoch: int) -> None:
        self.max_epoch = max_epoch

    def is_stop(self, train_object) -> bool:
        return train_object.epoch >= self.max_epoch

    def __str__(self) -> str:
        return f"for {self.max_epoch} epoch(s)"


class _AfterWarmUp(StopCondition):
    """A condition on the logged series ``attribute`` that looks at it only after ``warm_up`` values."""

    def __init__(self, attribute: str, delta: float = 0.01, patience: int = 5, warm_up: int = 5) -> None:
        self.attribute, self.delta, self.patience, self.warm_up = attribute, delta, patience, warm_up
        self.mark = warm_up  # the index of the last value that counted (the best one, or the last change)

    def _series(self, train_object) -> list | None:
        data = train_object.logger.get_attribute(self.attribute)
        return data if len(data) > self.warm_up else None


class StopOnPlateau(_AfterWarmUp):
    """Stop once ``attribute`` has not risen by more than a fraction ``delta`` above its best value for
    ``patience`` logged values, ignoring the first ``warm_up`` values."""

    def is_stop(self, train_object) -> bool:
        data = self._series(train_object)
        if data is None:
            return False
        if self.mark == -1 or data[-1] > data[self.mark] * (1 + self.delta):
            self.mark = len(data) - 1
        if len(data) - self.mark >= self.patience:
            print(f"No improvement for {self.patience} steps. Stopping.")
            return True
        return False

    def __str__(self) -> str:
        return f"until plateau in {self.attribute}"


class StopOnNoChange(_AfterWarmUp):
    """Stop once ``attribute`` has stayed within a fraction ``delta`` of its last changed value for more than
    ``patience`` logged values, ignoring the first ``warm_up`` values."""

    def is_stop(self, train_object) -> bool:
        data = self._series(train_object)
        if data is None:
            return False
        if abs(data[-1] - data[self.mark]) > data[self.mark] * self.delta:
            self.mark = len(data) - 1
        if len(data) - self.mark > self.patience:
            print(f"No change for {self.patience} steps. Stopping.")
            return True
        return False

    def __str__(self) -> str:
        return f"until no change in {self.attribute}"


class Threshold(StopCondition):
    """Stop once the last ``duration`` logged values of ``attribute`` are all at least ``maximum``."""

    def __init__(self, attribute: str, maximum: float, duration: int = 1) -> None:
        self.attribute, self.max, self.duration = attribute, maximum, duration
        self.no_data = 0

    def is_stop(self, train_object) -> bool:
        data = train_object.logger.get_attribute(self.attribute)
        if len(data) < self.duration:
            self.no_data += not data
            return False
        return all(value >= self.max for value in data[-self.duration:])

    def __str__(self) -> str:
        return f"until {self.attribute} reaches {self.max}"


class Or(StopCondition):
    def __init__(self, *criteria: StopCondition) -> None:
        self.criteria = criteria

    def is_stop(self, train_object) -> bool:
        return any(c.is_stop(train_object) for c in self.criteria)

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.criteria)


class And(StopCondition):
    def __init__(self, *criteria: StopCondition) -> None:
        self.criteria = criteria

    def is_stop(self, train_object) -> bool:
        return all(c.is_stop(train_object) for c in self.criteria)

    def __str__(self) -> str:
        return " and ".join(str(c) for c in self.criteria)
