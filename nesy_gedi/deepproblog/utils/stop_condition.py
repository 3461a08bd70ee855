"""Stop conditions of ``train_model``: an epoch count (``EpochStop``); others are not supported."""

from __future__ import annotations


class StopCondition:
    def is_stop(self, train_object) -> bool:
        raise NotImplementedError


class EpochStop(StopCondition):
    def __init__(self, max_epoch: int) -> None:
        self.max_epoch = max_epoch

    def is_stop(self, train_object) -> bool:
        return train_object.epoch >= self.max_epoch

    def __str__(self) -> str:
        return f"for {self.max_epoch} epoch(s)"
