"""Small models to try ``tconv check`` on: each is a callable that builds the model from the input shape.

``tconv check tconv.checking.examples:build_unet --input 1x3x350x525`` shows a
U-Net in the style of milesial/Pytorch-UNet (four max-pool stages, ConvTranspose
up-sampling, no "pad if the sizes differ" branch) failing on a 350x525 input.
PyTorch is imported when a builder is called, not before.

>>> model = build_unet((1, 3, 32, 32))
>>> type(model).__name__
'UNet'
"""
from __future__ import annotations

from typing import Any


def build_unet(input_shape: Any = (1, 3, 352, 528), channels: int = 4) -> Any:
    """A 4-stage U-Net for ``input_shape`` (N, C, H, W): ``C`` input channels, 2 classes out."""
    import torch
    from torch import nn

    def double(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())

    class Up(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = double(cin, cout)

        def forward(self, x: Any, skip: Any) -> Any:
            return self.conv(torch.cat([skip, self.up(x)], dim=1))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.inc = double(input_shape[1], c)
            self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), double(c << i, c << (i + 1))) for i in range(4))
            self.up = nn.ModuleList(Up(c << (4 - i), c << (3 - i)) for i in range(4))
            self.outc = nn.Conv2d(c, 2, 1)

        def forward(self, x: Any) -> Any:
            skips = [self.inc(x)]
            for down in self.down:
                skips.append(down(skips[-1]))
            x = skips.pop()
            for up in self.up:
                x = up(x, skips.pop())
            return self.outc(x)

    return UNet()


def build_generator(input_shape: Any = (1, 16, 1, 1), channels: int = 4) -> Any:
    """A DCGAN generator: a ``(N, nz, 1, 1)`` noise input becomes a 64x64 RGB image."""
    from torch import nn

    c, nz = channels, input_shape[1]
    layers: list = []
    for cin, cout, stride, padding in ((nz, 8 * c, 1, 0), (8 * c, 4 * c, 2, 1), (4 * c, 2 * c, 2, 1), (2 * c, c, 2, 1)):
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)
