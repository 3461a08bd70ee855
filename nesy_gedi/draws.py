"""Random draws made on their generator's device, then moved to where they are used.

A CPU generator draws on the CPU and the result is copied (the behaviour every CPU result was measured with); a
CUDA generator draws on the GPU with no copy from the host, which is what a captured CUDA graph needs.
"""

from __future__ import annotations

import torch


def _where(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
    if generator is not None:
        return generator.device
    return torch.device("cpu") if device is None else torch.device(device)


def rand(shape: int | tuple[int, ...], generator: torch.Generator | None = None,
         device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``device``."""
    out = torch.rand(shape, generator=generator, device=_where(generator, device), dtype=dtype)
    return out if device is None else out.to(device)


def randn(shape: int | tuple[int, ...], generator: torch.Generator | None = None,
          device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal draws of ``shape`` on ``device``."""
    out = torch.randn(shape, generator=generator, device=_where(generator, device), dtype=dtype)
    return out if device is None else out.to(device)


def randperm(n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
             ) -> torch.Tensor:
    """A random permutation of ``range(n)`` on ``device``: ``torch.randperm`` with a CPU generator, the order of
    ``n`` uniform draws with an accelerator's (CUDA's ``randperm`` may pass through the host for small ``n``)."""
    if on_device(generator):
        out = torch.rand(n, generator=generator, device=generator.device).argsort()
    else:
        out = torch.randperm(n, generator=generator, device=_where(generator, device))
    return out if device is None else out.to(device)


def on_device(generator: torch.Generator | None) -> bool:
    """Whether ``generator`` draws on an accelerator (so a step that uses it can be captured)."""
    return generator is not None and generator.device.type != "cpu"


def device_generator(device: torch.device | str, seed: int, cpu: torch.Generator | None = None) -> torch.Generator:
    """The generator of a run's random draws inside its updates: ``cpu`` (or a new CPU one) on the CPU, a generator
    on ``device`` seeded with ``seed`` elsewhere."""
    device = torch.device(device)
    if device.type == "cpu":
        return cpu if cpu is not None else torch.Generator().manual_seed(seed)
    return torch.Generator(device).manual_seed(seed)
