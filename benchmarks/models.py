"""The benchmark networks of the issues, with the same random weights for swiftattr and for PyTorch."""
from __future__ import annotations

import numpy as np

import swiftattr as sa


def mlp_weights(seed: int = 0):
    """MLP 784-512-256-10 (ReLU), PyTorch-style uniform(±1/√fan_in) initialisation."""
    rng = np.random.default_rng(seed)
    sizes = [784, 512, 256, 10]
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(i)
        params.append((rng.uniform(-bound, bound, (o, i)).astype(np.float32), rng.uniform(-bound, bound, o).astype(np.float32)))
    return params


def cnn_weights(seed: int = 0):
    """CNN on 1×28×28: conv 1→16 k5, ReLU, maxpool 2, conv 16→32 k5, ReLU, maxpool 2, flatten, 512→128, ReLU, 128→10."""
    rng = np.random.default_rng(seed)

    def u(shape, fan_in):
        b = 1 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    return {
        "c1": (u((16, 1, 5, 5), 25), u(16, 25)),
        "c2": (u((32, 16, 5, 5), 400), u(32, 400)),
        "d1": (u((128, 512), 512), u(128, 512)),
        "d2": (u((10, 128), 128), u(10, 128)),
    }


def mlp_swiftattr(params):
    layers = []
    for k, (W, b) in enumerate(params):
        layers.append(sa.Linear(W, b))
        if k < len(params) - 1:
            layers.append(sa.ReLU())
    return sa.Sequential(layers)


def cnn_swiftattr(p):
    return sa.Sequential([
        sa.Conv2d(*p["c1"]), sa.ReLU(), sa.MaxPool2d(2),
        sa.Conv2d(*p["c2"]), sa.ReLU(), sa.MaxPool2d(2),
        sa.Flatten(), sa.Linear(*p["d1"]), sa.ReLU(), sa.Linear(*p["d2"]),
    ], input_shape=(1, 28, 28))


def mlp_torch(params):
    import torch
    import torch.nn as nn

    layers = []
    for k, (W, b) in enumerate(params):
        lin = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if k < len(params) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def cnn_torch(p):
    import torch
    import torch.nn as nn

    net = nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    with torch.no_grad():
        for mod, key in zip([net[0], net[3], net[7], net[9]], ["c1", "c2", "d1", "d2"]):
            mod.weight.copy_(torch.from_numpy(p[key][0]))
            mod.bias.copy_(torch.from_numpy(p[key][1]))
    return net.eval()


def _resnet_classes():
    """The ResNet modules (defined on first use, so this file imports without torch). Every ReLU is its own
    module, used once: Captum's DeepLift finds nonlinearities by their modules."""
    import torch.nn as nn

    class BasicBlock(nn.Module):
        """conv3×3 (stride) → BN → ReLU → conv3×3 → BN, plus the shortcut (a strided 1×1 conv + BN when the
        shape changes), then ReLU."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                               if stride != 1 or cin != cout else nn.Identity())
            self.relu2 = nn.ReLU()

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(out + self.downsample(x))

    class ResNet(nn.Module):
        def __init__(self, widths, blocks, in_channels, classes, stem_pool):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                      nn.ReLU(), *([nn.MaxPool2d(2)] if stem_pool else []))
            layers, cin = [], widths[0]
            for k, w in enumerate(widths):
                for b in range(blocks):
                    layers.append(BasicBlock(cin, w, 2 if k > 0 and b == 0 else 1))
                    cin = w
            self.layers = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))

    return ResNet


def randomize_batchnorm(model, generator) -> None:
    """Non-trivial inference statistics and affine parameters for every BatchNorm of ``model`` (a freshly
    initialised one has mean 0, variance 1, weight 1, bias 0, which would hide a wrong formula)."""
    import torch
    import torch.nn as nn

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = mod.num_features
                mod.running_mean.copy_(torch.rand(c, generator=generator) - 0.5)
                mod.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))
                mod.weight.copy_(0.5 + torch.rand(c, generator=generator))
                mod.bias.copy_(0.6 * torch.rand(c, generator=generator) - 0.3)


def resnet_torch(seed: int = 0, widths=(16, 32, 64), blocks: int = 1, in_channels: int = 3, classes: int = 10,
                 stem_pool: bool = False):
    """The issue-9 benchmark ResNet (in eval mode), CIFAR-sized by default: input 3×32×32, a 3×3 stem, stages
    of 16, 32 and 64 channels of ``blocks`` basic blocks each (the first block of stages 2 and 3 strided, with
    a 1×1 conv + BatchNorm downsample), global average pooling, Linear to 10. Weights come from ``seed``
    (torch's default initialisation under torch.manual_seed), BatchNorm statistics from
    :func:`randomize_batchnorm`. Small ``widths`` give the test fixtures' ResNet from the same code."""
    import torch

    torch.manual_seed(seed)
    model = _resnet_classes()(tuple(widths), blocks, in_channels, classes, stem_pool)
    randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def best_time(fn, repeats: int, warmup: int = 1, settle: float = 0.0) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` calls (and ``settle`` seconds of sleep first, so
    other libraries' BLAS/OpenMP worker threads stop spinning)."""
    import time

    time.sleep(settle)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Single-precision GEMM rate of numpy's BLAS on this machine (a reference for 'peak')."""
    import time

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def print_header(torch_threads: int | None = None) -> None:
    """The machine and builds every figure below was measured on: the CPU, swiftattr's build_info(),
    numpy's BLAS (threadpoolctl, when installed) and torch's version and threads."""
    info = sa.build_info()
    print(f"# CPU: {info['cpu']} ({info['processors']} processors, {info['arch']})")
    print(f"# swiftattr {info['version']}: blas={info['blas']} {info['blas_version']}, kernel {info['blas_core']}, "
          f"threads {info['threads']}")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
                print(f"# numpy {np.__version__}: {pool.get('internal_api')} {pool.get('version')}, "
                      f"kernel {pool.get('architecture')}, threads {pool.get('num_threads')}")
                break
    except ImportError:
        print(f"# numpy {np.__version__}")
    try:
        import torch

        print(f"# torch {torch.__version__}, threads {torch_threads or torch.get_num_threads()}")
    except ImportError:
        print("# torch not importable: no Captum comparison")
