"""Models for the check tests, built here (no downloads): U-Nets in the styles of segmentation_models.pytorch
and milesial/Pytorch-UNet, a DCGAN generator and a HiFi-GAN-like 1-D stack; all tiny, so real torch runs them on
real zeros in milliseconds."""
import torch
from torch import nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))

class Encoder(nn.Module):  # resnet-like: conv s2, pool s2, then 3 strided stages
    def __init__(self, c=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 7, stride=2, padding=3)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = Block(c, c)
        self.layer2 = Block(c, 2*c, 2)
        self.layer3 = Block(2*c, 4*c, 2)
        self.layer4 = Block(4*c, 8*c, 2)
    def forward(self, x):
        f0 = F.relu(self.conv1(x)); f1 = self.layer1(self.pool(f0)); f2 = self.layer2(f1); f3 = self.layer3(f2); f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]

class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv = Block(cin + cskip, cout)
        self.resize = False  # the interpolation fix: resize to the skip's size before the cat
    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if skip is not None and self.resize:
            x = F.interpolate(x, size=skip.shape[2:])
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)

class SmpUnet(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.encoder = Encoder(c)
        self.blocks = nn.ModuleList([DecoderBlock(8*c, 4*c, 4*c), DecoderBlock(4*c, 2*c, 2*c), DecoderBlock(2*c, c, c), DecoderBlock(c, c, c), DecoderBlock(c, 0, c)])
        self.head = nn.Conv2d(c, 1, 3, padding=1)
    def forward(self, x):
        f = self.encoder(x)
        x = f[-1]
        skips = f[:-1][::-1]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return self.head(x)

class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())
    def forward(self, x):
        return self.net(x)

class Up(nn.Module):
    def __init__(self, cin, cout, pad=True):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)
        self.pad = pad
    def forward(self, x1, x2):
        x1 = self.up(x1)
        if self.pad:
            dy = x2.size()[2] - x1.size()[2]; dx = x2.size()[3] - x1.size()[3]
            x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))

class MilesialUNet(nn.Module):
    def __init__(self, c=4, pad=True):
        super().__init__()
        self.inc = DoubleConv(3, c)
        self.down = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), DoubleConv(c * 2**i, c * 2**(i+1))) for i in range(4)])
        self.up = nn.ModuleList([Up(c * 2**(4-i), c * 2**(3-i), pad) for i in range(4)])
        self.outc = nn.Conv2d(c, 2, 1)
    def forward(self, x):
        xs = [self.inc(x)]
        for d in self.down:
            xs.append(d(xs[-1]))
        x = xs.pop()
        for u in self.up:
            x = u(x, xs.pop())
        return self.outc(x)

class DCGAN(nn.Module):
    def __init__(self, nz=8, c=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, c*8, 4, 1, 0, bias=False), nn.BatchNorm2d(c*8), nn.ReLU(True),
            nn.ConvTranspose2d(c*8, c*4, 4, 2, 1, bias=False), nn.BatchNorm2d(c*4), nn.ReLU(True),
            nn.ConvTranspose2d(c*4, c*2, 4, 2, 1, bias=False), nn.BatchNorm2d(c*2), nn.ReLU(True),
            nn.ConvTranspose2d(c*2, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
            nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh())
    def forward(self, x):
        return self.main(x)

class ResBlock1d(nn.Module):
    def __init__(self, c, k, d):
        super().__init__()
        self.conv = nn.Conv1d(c, c, k, dilation=d, padding=d * (k - 1) // 2)
    def forward(self, x):
        return x + self.conv(F.leaky_relu(x, 0.1))

class HiFiGAN(nn.Module):
    def __init__(self, c=16, rates=(8, 8, 2, 2)):
        super().__init__()
        self.pre = nn.Conv1d(8, c, 7, padding=3)
        self.ups = nn.ModuleList([nn.ConvTranspose1d(c // 2**i, c // 2**(i+1), 2 * r, r, padding=r // 2) for i, r in enumerate(rates)])
        self.res = nn.ModuleList([ResBlock1d(c // 2**(i+1), 3, 3) for i in range(len(rates))])
        self.post = nn.Conv1d(c // 2**len(rates), 1, 7, padding=3)
    def forward(self, x):
        x = self.pre(x)
        for up, res in zip(self.ups, self.res):
            x = res(up(F.leaky_relu(x, 0.1)))
        return torch.tanh(self.post(x))
