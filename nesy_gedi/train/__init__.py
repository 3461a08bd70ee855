"""Training: the one loop (:class:`Trainer`), loss terms, checkpoints and evaluation."""

from .checkpoint import atomic_save, atomic_write_json, load_checkpoint, save_network
from .loop import LoopConfig, NonFiniteLoss, Trainer

__all__ = ["LoopConfig", "NonFiniteLoss", "Trainer", "atomic_save", "atomic_write_json", "load_checkpoint",
           "save_network"]
