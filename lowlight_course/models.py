"""Two small enhancement networks and a seeding helper.

- :class:`UNet`: a small supervised U-Net (Ronneberger et al., "U-Net: Convolutional Networks for
  Biomedical Image Segmentation", MICCAI 2015) that maps a low-light image to an enhanced one.
  Its ``output`` argument picks how the last layer is turned into an image in [0, 1]; one choice
  (``"sigmoid"``) is the saturating activation that the optimisation notebook studies as a plateau
  cause.
- :class:`CurveNet`: a Zero-DCE-style curve estimator (Guo et al., "Zero-Reference Deep Curve
  Estimation for Low-Light Image Enhancement", CVPR 2020). It predicts per-pixel curve parameters
  ``A`` and brightens with the quadratic light-enhancement curve ``LE(x) = x + A x (1 - x)``,
  applied ``iterations`` times. It is trained without references, with the Zero-DCE losses.

Both take and return ``torch.float32`` tensors of shape (B, 3, H, W) with values in [0, 1]
(see ``docs/CONTRACTS.md``).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "CurveNet", "seed_everything", "count_parameters"]


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> int:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every CUDA device); return ``seed``.

    With ``deterministic=True`` (the default) cuDNN is also put in deterministic mode and its
    auto-tuner is switched off, so two runs on the same machine give the same numbers. (Some CUDA
    kernels stay non-deterministic; on the CPU, runs with the same seed are bit-identical.)

    Example:
        >>> seed_everything(0)
        0
        >>> a = torch.rand(2); _ = seed_everything(0); bool((a == torch.rand(2)).all())
        True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _check_input(x, in_channels: int, who: str) -> torch.Tensor:
    """Validate a network input: a float tensor (B, C, H, W) with the right number of channels."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor, got {type(x).__name__}. "
                        f"Convert it with torch.as_tensor(...).")
    if not x.is_floating_point():
        hint = " and divide by 255" if x.dtype == torch.uint8 else ""
        raise TypeError(f"{who} expects a floating-point image in [0, 1], got dtype {x.dtype}. "
                        f"Use x.float(){hint}.")
    if x.dim() != 4:
        fix = "add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else "reshape it to (B, C, H, W)"
        raise ValueError(f"{who} expects a batch of shape (B, C, H, W), got shape {tuple(x.shape)}: {fix}.")
    if x.shape[1] != in_channels:
        hint = (" (it looks channels-last: use x.permute(0, 3, 1, 2))"
                if x.shape[-1] == in_channels else "")
        raise ValueError(f"{who} was built for {in_channels} input channels, got {x.shape[1]} "
                         f"(shape {tuple(x.shape)}){hint}.")
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{who} got an empty batch of shape {tuple(x.shape)}.")
    return x


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
    )


class _StraightThroughClamp(torch.autograd.Function):
    """Clamp to [0, 1] in the forward pass, pass the gradient through unchanged in the backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        return grad


class UNet(nn.Module):
    """A small U-Net for supervised low-light enhancement: (B, C, H, W) -> (B, C, H, W).

    Each level has two 3x3 convolutions with LeakyReLU; down-sampling is 2x2 max pooling,
    up-sampling is a 2x2 transposed convolution, and skips are concatenations (Ronneberger et al.
    2015). There is no normalisation layer, so the network behaves the same in ``train()`` and
    ``eval()`` and for any batch size. Any H and W work: the input is padded (replicate) to a
    multiple of ``2 ** depth`` and the output is cropped back.

    Args:
        in_channels: image channels (3 for RGB). The output has the same number.
        base: channels at the first level; level ``k`` has ``base * 2**k``.
        depth: number of down-sampling steps.
        output: how the last 1x1 convolution's output ``z`` becomes an image:

            - ``"residual"`` (default): ``clamp(low + z, 0, 1)`` with a *straight-through* clamp:
              the forward value is clamped to [0, 1], but the gradient passes as if there were no
              clamp, so saturated pixels still receive a learning signal. The last layer starts at
              zero, so an untrained network is the identity (a sensible starting point that is
              already in range).
            - ``"sigmoid"``: ``sigmoid(z)``. Always in (0, 1), but saturating: where ``|z|`` is
              large the derivative ``s (1 - s)`` is tiny, so a dark target pixel pushed toward 0
              (or a bright one toward 1) gives the optimiser almost nothing to follow, a plateau
              cause studied in the optimisation notebook.
            - ``"clamp"``: ``clamp(z, 0, 1)``, a hard clamp: zero gradient outside [0, 1], so a
              pixel that leaves the range stops learning ("dead" pixels).

    Parameter counts (3 channels): ``base=16, depth=2``: 117,075; ``base=32, depth=2``: 466,595;
    ``base=16, depth=3``: 482,067.

    Example:
        >>> net = UNet(base=8, depth=2)
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    OUTPUTS = ("residual", "sigmoid", "clamp")

    def __init__(self, in_channels: int = 3, base: int = 16, depth: int = 2, output: str = "residual"):
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}.")
        for name, value, low in (("in_channels", in_channels, 1), ("base", base, 1), ("depth", depth, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        self.in_channels, self.base, self.depth, self.output = in_channels, base, depth, output
        widths = [base * 2 ** k for k in range(depth + 1)]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.encoders.append(_conv_block(cin, w))
            cin = w
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in range(depth, 0, -1):
            self.ups.append(nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2))
            self.decoders.append(_conv_block(2 * widths[k - 1], widths[k - 1]))
        self.head = nn.Conv2d(widths[0], in_channels, 1)
        if output == "residual":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, base={self.base}, depth={self.depth}, output={self.output!r}"

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        """Enhance ``low`` (B, C, H, W) in [0, 1]; returns (B, C, H, W) in [0, 1]."""
        _check_input(low, self.in_channels, "UNet")
        h, w = low.shape[-2:]
        m = 2 ** self.depth
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(low, (0, pw, 0, ph), mode="replicate") if (ph or pw) else low
        skips = []
        for k, enc in enumerate(self.encoders):
            x = enc(x)
            if k < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, dec in zip(self.ups, self.decoders):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        z = self.head(x)[..., :h, :w]
        if self.output == "residual":
            return _StraightThroughClamp.apply(low + z.to(low.dtype))
        if self.output == "sigmoid":
            return torch.sigmoid(z)
        return z.clamp(0.0, 1.0)


class CurveNet(nn.Module):
    """Zero-DCE-style deep curve estimation network (Guo et al., CVPR 2020).

    Seven 3x3 convolutions with ReLU (``channels`` wide, stride 1, no down-sampling), with the
    symmetric skip concatenations of DCE-Net: conv5 sees ``[x3, x4]``, conv6 ``[x2, x5]``, conv7
    ``[x1, x6]``. Conv7 outputs ``3 * iterations`` maps through ``tanh``: one curve parameter map
    ``A_n`` in [-1, 1] per colour channel and iteration. The image is brightened iteratively with the
    light-enhancement curve

        ``LE_n(x) = LE_{n-1}(x) + A_n * LE_{n-1}(x) * (1 - LE_{n-1}(x))``,

    which is monotonic and keeps [0, 1] inside [0, 1] for ``A_n`` in [-1, 1].

    ``forward(x)`` returns the enhanced image. ``forward(x, return_curves=True)`` returns
    ``(enhanced, A)`` with ``A`` of shape (B, 3 * iterations, H, W); the illumination-smoothness
    loss needs ``A``. The curves of the latest forward pass are also kept in ``self.last_curves``
    (with their autograd graph), so a loss given to ``fit`` (which only sees ``pred, target, low``)
    can reach them through a closure over the model.

    Parameter count: ``channels=32, iterations=8``: 79,416 (the original DCE-Net).

    Example:
        >>> net = CurveNet(channels=8, iterations=4)
        >>> y, A = net(torch.rand(1, 3, 16, 16), return_curves=True)
        >>> y.shape, A.shape
        (torch.Size([1, 3, 16, 16]), torch.Size([1, 12, 16, 16]))
    """

    def __init__(self, channels: int = 32, iterations: int = 8):
        super().__init__()
        for name, value in (("channels", channels), ("iterations", iterations)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.channels, self.iterations = channels, iterations
        c = channels
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, c, 3, padding=1)
        self.conv4 = nn.Conv2d(c, c, 3, padding=1)
        self.conv5 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.conv6 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.conv7 = nn.Conv2d(2 * c, 3 * iterations, 3, padding=1)
        self.last_curves: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"channels={self.channels}, iterations={self.iterations}"

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """The curve parameter maps ``A`` (B, 3 * iterations, H, W), values in [-1, 1]."""
        _check_input(x, 3, "CurveNet")
        x1 = F.relu(self.conv1(x))
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        x5 = F.relu(self.conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.conv7(torch.cat([x1, x6], 1)))

    @staticmethod
    def apply_curves(x: torch.Tensor, curves: torch.Tensor) -> torch.Tensor:
        """Apply ``LE(x) = x + A x (1 - x)`` once per 3-channel group of ``curves``."""
        for a in torch.split(curves, 3, dim=1):
            x = x + a * x * (1 - x)
        return x

    def forward(self, x: torch.Tensor, return_curves: bool = False):
        """Enhance ``x`` (B, 3, H, W) in [0, 1]; with ``return_curves`` also return ``A``."""
        a = self.curves(x)
        self.last_curves = a
        y = self.apply_curves(x, a.to(x.dtype))
        return (y, a) if return_curves else y
