"""Which 3D teacher fits the 10-minute target: one AdamW training step per 28^3 volume for MONAI ResNets with the
stems a small cube can take, against the registered ``resnet10_3d``, in the same run (ratios to it).

Each candidate trains 3 steps on a random batch of 32 volumes after one warm-up step (the fastest step counts), and
its last feature map side is printed (what Grad-CAM is computed at: 1 means no map). Random weights and inputs:
speed does not depend on them.

Run: ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/volume_teachers.py`` (about 2 minutes on
2 cores).
"""

from __future__ import annotations

import argparse
import time

import common
import torch
import torch.nn.functional as F

from meddistill.models import create_model


def candidates() -> dict[str, torch.nn.Module]:
    from monai.networks.nets import resnet10, resnet18

    base = dict(spatial_dims=3, n_input_channels=1, num_classes=2, conv1_t_size=3, conv1_t_stride=2)
    return {
        "resnet10_3d (registered: half width, 3x3x3 stride 2, no pool)": create_model("resnet10_3d", 2, 1, 28),
        "ResNet-10, full width, stride 2, no pool": resnet10(**base, no_max_pool=True),
        "ResNet-10, full width, stride 2, max pool": resnet10(**base),
        "ResNet-18, full width, stride 2, max pool": resnet18(**base),
        "ResNet-18, MONAI's default 7x7x7 stem": resnet18(spatial_dims=3, n_input_channels=1, num_classes=2),
    }


def step_ms(model: torch.nn.Module, batch: int, side: int) -> tuple[float, int]:
    """(fewest milliseconds per volume of a training step, side of the last feature map)."""
    x, y = torch.randn(batch, 1, side, side, side), torch.randint(0, 2, (batch,))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    seen = {}
    model.layer4.register_forward_hook(lambda m, i, o: seen.__setitem__("side", o.shape[-1]))
    times = []
    for _ in range(4):
        start = time.perf_counter()
        loss = F.cross_entropy(model.train()(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return min(times[1:]) / batch * 1000, int(seen["side"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--side", type=int, default=28)
    args = parser.parse_args()
    common.setup("3D teachers: one training step per 28^3 volume", threads=2)
    rows = [(name, *step_ms(model, args.batch, args.side)) for name, model in candidates().items()]
    base = rows[0][1]
    for name, ms, side in rows:
        print(f"{name:<62} {ms:7.1f} ms per volume  {ms / base:5.2f}x  last map {side}^3")


if __name__ == "__main__":
    main()
