"""Exceptions raised by nesy_gedi.

Every error a user can trigger with bad input derives from :class:`NesyError`
and says what is wrong in terms of the user's own program, query or data.
"""


class NesyError(ValueError):
    """Base class of all user-facing nesy_gedi errors."""


class ProgramError(NesyError):
    """A ``.pl`` program could not be parsed or has a malformed declaration."""


class UnknownNetworkError(NesyError):
    """A neural predicate names a network that the model was not given."""


class QueryError(NesyError):
    """A query is malformed, names an unknown predicate or has no proof."""


class NoProofError(QueryError):
    """A query has no proof: its probability is 0 for every input."""


class GroundingTimeout(QueryError):
    """Grounding a query took longer than the time limit it was given."""


class NotSupportedError(NesyError):
    """A feature of ProbLog or DeepProbLog that nesy_gedi does not implement."""


class InputError(NesyError):
    """Tensors given for a query have the wrong names, shapes or batch sizes."""


class DataError(NesyError):
    """A data set could not be found or read."""


class Interrupted(NesyError):
    """A run was stopped by SIGINT/SIGTERM after saving its checkpoint."""
