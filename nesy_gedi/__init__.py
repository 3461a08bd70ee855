"""nesy_gedi: DeepProbLog-style neuro-symbolic learning with batched tensor circuits and GEDI."""

from .errors import DataError, InputError, NesyError, NoProofError, ProgramError, QueryError, UnknownNetworkError
from .model import NeSyModel, QueryResult
from .program import Program

__all__ = [
    "DataError",
    "InputError",
    "NeSyModel",
    "NesyError",
    "NoProofError",
    "Program",
    "ProgramError",
    "QueryError",
    "QueryResult",
    "UnknownNetworkError",
]
__version__ = "0.1.0"
