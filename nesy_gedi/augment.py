"""Digit augmentations on batched tensors, on their device.

torchvision's ``v2.RandomAffine`` draws one set of parameters per call, so a
batch would share a single transform; GEDI's invariance term needs an
independent view per image.  :class:`DigitAugment` draws per-image affine
parameters (rotation, scale, shear, translation, i.e. a random crop-and-resize)
and applies them in one ``affine_grid``/``grid_sample`` call, then thickens or
thins strokes (max-pool dilation/erosion) and adds noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import draws
from .train.warmup import linear_warmup


@dataclass
class DigitAugment:
    degrees: float = 15.0
    translate: float = 0.12
    scale: tuple[float, float] = (0.85, 1.15)
    shear: float = 10.0
    noise: float = 0.1
    stroke: float = 0.5  # probability of thickening or thinning the strokes (3x3 dilation/erosion)
    background: float = -1.0  # value of an empty pixel in the normalised images

    def scaled(self, strength: float) -> "DigitAugment":
        """The same augmentation with every perturbation scaled by ``strength`` in [0, 1] (0: identity)."""
        r = min(max(strength, 0.0), 1.0)
        return DigitAugment(self.degrees * r, self.translate * r, (1 + (self.scale[0] - 1) * r, 1 + (self.scale[1] - 1) * r),
                            self.shear * r, self.noise * r, self.stroke * r, self.background)

    def warmed_up(self, step: int, warmup: int) -> "DigitAugment":
        """The augmentation at update ``step`` (0-based) of a linear warm-up over ``warmup`` updates:
        strength ``(step + 1) / warmup`` during the warm-up, then this augmentation itself (0: no warm-up)."""
        strength = linear_warmup(step, warmup)
        return self if strength >= 1 else self.scaled(strength)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 strength: torch.Tensor | None = None,
                 rows: tuple[int, int, int] | tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """A random view of each image in ``[B, C, H, W]`` (normalised to [-1, 1]).

        ``strength``: a device scalar in [0, 1] that scales every perturbation, as :meth:`scaled` does, read when
        the view is drawn (so a captured step follows a warm-up; see :mod:`nesy_gedi.train.capture`).
        ``rows = (start, stop, total)`` or ``(indices, total)``: the images are those rows of a batch of ``total``
        (one process's shard, :mod:`nesy_gedi.train.distributed`); the draws are those of the whole batch, so each
        image gets the view it would get in one process."""
        if images.dim() != 4:
            raise ValueError(f"DigitAugment expects images [batch, channels, height, width], got {tuple(images.shape)}")
        b, device = images.shape[0], images.device
        if rows is None:
            index, total = None, b
        elif len(rows) == 3:
            index, total = slice(rows[0], rows[1]), rows[2]
        else:
            index, total = rows[0].to(device), rows[1]
        if index is not None and (index.stop - index.start if isinstance(index, slice) else len(index)) != b:
            raise ValueError(f"the rows of the augmentation do not match a batch of {b} images")

        def draw(shape: tuple[int, ...], normal: bool = False) -> torch.Tensor:
            out = (draws.randn if normal else draws.rand)((total, *shape), generator, device)
            return out if index is None else out[index]

        def uniform(low: float, high: float) -> torch.Tensor:
            u = low + (high - low) * draw(())
            return u if strength is None else u * strength

        def around_one(low: float, high: float) -> torch.Tensor:  # a scale factor: 1 at strength 0
            return uniform(low, high) if strength is None else 1 + uniform(low - 1, high - 1)

        angle = uniform(-self.degrees, self.degrees) * math.pi / 180
        shear = uniform(-self.shear, self.shear) * math.pi / 180
        scale = around_one(*self.scale)
        tx, ty = uniform(-self.translate, self.translate) * 2, uniform(-self.translate, self.translate) * 2
        cos, sin = torch.cos(angle), torch.sin(angle)
        # inverse map output -> input coordinates: rotate, shear along x, then scale
        theta = torch.stack([
            torch.stack([cos / scale, (-sin + torch.tan(shear) * cos) / scale, tx], 1),
            torch.stack([sin / scale, (cos + torch.tan(shear) * sin) / scale, ty], 1),
        ], 1)
        grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
        shifted = images - self.background  # zero background so padding is empty
        out = F.grid_sample(shifted, grid, align_corners=False, padding_mode="zeros") + self.background
        if self.stroke > 0:
            u = draw(())
            out = self._stroke(out, u if strength is None else u / strength.clamp_min(1e-12))
        if self.noise > 0:
            noise = self.noise if strength is None else self.noise * strength
            out = out + noise * draw(tuple(out.shape[1:]), normal=True).to(out.dtype)
        return out.clamp(-1.0, 1.0)

    def _stroke(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        dilated = F.max_pool2d(images, 3, stride=1, padding=1)
        eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
        half = self.stroke / 2
        choose = lambda mask: mask.view(-1, 1, 1, 1).to(images.dtype)  # noqa: E731
        thick, thin = choose(u < half), choose((u >= half) & (u < self.stroke))
        return thick * dilated + thin * eroded + (1 - thick - thin) * images
