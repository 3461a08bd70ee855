"""Is the generative term still teaching?

With energy penalties ``a`` on the data and ``b`` on the samples, the generative loss
``E(x) - E(x') + a E(x)^2 + b E(x')^2`` is bounded below by its *floor* ``-1/(4a) - 1/(4b)``,
reached at ``E(x) = -1/(2a)`` and ``E(x') = +1/(2b)`` (``-5`` with data at ``-5`` and samples at
``+5`` for ``a = b = 0.1``). At the floor the loss's gradient with respect to both energies is
zero: the SGLD chains have stopped reaching the data, and the term no longer trains the
network. :class:`SaturationMonitor` reports how often the recent updates sat there.
"""

from __future__ import annotations

import math
from collections import deque

WARN_FRACTION = 0.5  # a window with at least this fraction of updates at the floor counts as saturated


def gen_floor(energy_l2: float, sample_l2: float | None = None) -> float:
    """The least value of the generative loss: ``-1/(4a) - 1/(4b)``; ``-inf`` if a penalty is 0."""
    a, b = energy_l2, energy_l2 if sample_l2 is None else sample_l2
    if a < 0 or b < 0:
        raise ValueError(f"energy penalties must be non-negative, got {a} and {b}")
    return -math.inf if a == 0 or b == 0 else -1 / (4 * a) - 1 / (4 * b)


class SaturationMonitor:
    """The generative loss and energies of the last ``window`` updates, and how many sat at the floor.

    An update counts as saturated when its loss is within ``tolerance * |floor|`` of ``floor``.
    """

    optional_state = True  # a checkpoint made before the monitor existed resumes with an empty window

    def __init__(self, floor: float, window: int = 100, tolerance: float = 0.05) -> None:
        if window < 1 or not 0 < tolerance < 1:
            raise ValueError(f"need window >= 1 and 0 < tolerance < 1, got {window} and {tolerance}")
        self.floor, self.window, self.tolerance = floor, window, tolerance
        # (gen, data energy, sample energy, fraction at the floor, updates): one update, or the means of several
        self.rows: deque[tuple[float, float, float, float, int]] = deque()

    def at_floor(self, gen: float) -> bool:
        return math.isfinite(self.floor) and gen <= self.floor + self.tolerance * abs(self.floor)

    def observe(self, gen: float, data_energy: float, sample_energy: float, at_floor: float | None = None,
                updates: int = 1) -> None:
        """One update's values, or (captured training) the means of ``updates`` updates with the fraction of them
        ``at_floor``."""
        fraction = float(self.at_floor(float(gen))) if at_floor is None else float(at_floor)
        self.rows.append((float(gen), float(data_energy), float(sample_energy), fraction, int(updates)))
        while sum(r[4] for r in self.rows) - self.rows[0][4] >= self.window:
            self.rows.popleft()

    def _mean(self, column: int) -> float:
        return sum(r[column] * r[4] for r in self.rows) / sum(r[4] for r in self.rows)

    def fraction_at_floor(self) -> float:
        if not self.rows or not math.isfinite(self.floor):
            return 0.0
        return self._mean(3)

    def summary(self) -> dict[str, float | int]:
        """Means over the window, the floor and the saturated fraction (empty if nothing was observed)."""
        if not self.rows:
            return {}
        return {"floor": self.floor, "updates": sum(r[4] for r in self.rows),
                "fraction_at_floor": self.fraction_at_floor(),
                "mean_gen": self._mean(0), "mean_data_energy": self._mean(1), "mean_sample_energy": self._mean(2)}

    def warning(self, threshold: float = WARN_FRACTION) -> str | None:
        """A one-line warning when at least ``threshold`` of the window sat at the floor, else None."""
        s = self.summary()
        if not s or s["fraction_at_floor"] < threshold:
            return None
        return (f"warning: the generative loss sat at its floor ({self.floor:.3g}) in {s['fraction_at_floor']:.0%} of "
                f"the last {s['updates']} updates (data energy {s['mean_data_energy']:.2f}, SGLD samples "
                f"{s['mean_sample_energy']:.2f}): the chains no longer reach the data and the generative term no "
                "longer trains the network (experiments/gedi/README.md, 'The generative term saturates')")

    def state_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state: dict) -> None:
        self.rows = deque()
        for row in state["rows"]:  # rows of three: one update each (checkpoints of older versions)
            self.observe(*row) if len(row) == 3 else self.observe(*row[:3], at_floor=row[3], updates=row[4])
