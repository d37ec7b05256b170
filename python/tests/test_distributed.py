"""sa.distributed.attribute: a method mapped over blocks of rows (numpy, array-like as zarr, dask) equals one
call on one machine — seeded methods included, through first_example — on dask's threaded scheduler and on a
LocalCluster of worker processes."""
import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import

da = optional_import("dask.array")

D, K = 12, 3


def mlp():
    rng = np.random.default_rng(8)
    return sa.Sequential([sa.Linear(rng.standard_normal((16, D)).astype(np.float32), rng.standard_normal(16).astype(np.float32)),
                          sa.Tanh(), sa.Linear(rng.standard_normal((K, 16)).astype(np.float32))])


def data(n=50):
    return np.random.default_rng(9).standard_normal((n, D)).astype(np.float32)


def close(blocks, whole):
    """Blocks run other GEMM shapes than one call, so they agree to float32 rounding: each attribution is a
    sum of at most a few hundred products accumulated in float32 (relative error ~1e-6 of the terms' scale),
    and 1e-5 of the result's scale (as the EG/SmoothGrad split tests) is far below any change a wrong offset,
    seed or row slice makes (order 1e-1)."""
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-5 * max(1.0, float(np.abs(whole).max())))


class ArrayLike:
    """What dask reads a zarr or h5py array through: shape, dtype and slicing (zarr itself is not needed)."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return self.a[key]


CASES = [
    ("integrated_gradients", dict(target=1, n_steps=16)),
    ("expected_gradients", dict(references=data(7) * 0.5, target=2, n_samples=9, seed=11)),
    ("smoothgrad", dict(target=0, n_samples=4, stdevs=0.3, seed=5, first_example=100)),
    ("deepshap", dict(references=data(5), target=1)),
    ("shapley_value_sampling", dict(target=1, n_samples=3, seed=2)),
]


@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_threaded_blocks_equal_one_call(name, args):
    net, x = mlp(), data()
    whole = getattr(sa, name)(net, x, **args)
    phi = sa.distributed.attribute(name, net, x, chunks=16, **args)
    assert isinstance(phi, da.Array) and phi.chunks[0] == (16, 16, 16, 2)
    close(phi.compute(scheduler="threads"), whole)


def test_per_example_targets_and_baselines_follow_their_rows():
    net, x = mlp(), data()
    t = np.arange(x.shape[0]) % K
    b = 0.1 * data(x.shape[0])[::-1].copy()
    whole = sa.integrated_gradients(net, x, baselines=b, target=t, n_steps=8)
    close(sa.distributed.attribute(sa.integrated_gradients, net, x, chunks=7, baselines=b, target=t, n_steps=8).compute(),
          whole)


def test_dask_and_array_like_inputs():
    net, x = mlp(), data()
    whole = sa.saliency(net, x, target=0)
    close(sa.distributed.attribute(sa.saliency, net, da.from_array(x, chunks=(9, 4)), target=0).compute(), whole)
    like = ArrayLike(x)
    close(sa.distributed.attribute(sa.saliency, net, like, chunks=20, target=0).compute(), whole)
    assert like.reads >= 3  # read block by block


def test_blocks_get_their_offset_and_one_seed():
    calls = []

    def seeded(net, x, target=None, seed=None, first_example=0):
        calls.append((seed, first_example, x.shape[0]))
        return np.zeros_like(x)

    net, x = mlp(), data(20)
    sa.distributed.attribute(seeded, net, x, chunks=5, target=0, first_example=3).compute(scheduler="sync")
    seeds = {c[0] for c in calls}
    assert len(seeds) == 1 and None not in seeds  # drawn once, on the client, for every block
    assert sorted(c[1:] for c in calls) == [(3, 1), (3, 5), (8, 5), (13, 5), (18, 5)]  # the probe, then the blocks


def test_refusals():
    net, x = mlp(), data(10)
    with pytest.raises(sa.SwiftAttrError, match="mixes the examples"):
        sa.distributed.attribute(sa.feature_permutation, net, x, chunks=5, target=0)
    with pytest.raises(sa.SwiftAttrError, match="return_convergence_delta"):
        sa.distributed.attribute(sa.integrated_gradients, net, x, target=0, return_convergence_delta=True)
    with pytest.raises(sa.SwiftAttrError, match="chunks"):
        sa.distributed.attribute(sa.saliency, net, x, chunks=0, target=0)
    with pytest.raises(sa.SwiftAttrError, match="no method"):
        sa.distributed.attribute("no_such_method", net, x, target=0)
    with pytest.raises(sa.SwiftAttrError, match="target"):  # checked on the client, before any block runs
        sa.distributed.attribute(sa.saliency, net, x, target=K)


def test_local_cluster_of_processes():
    distributed = optional_import("dask.distributed")
    net, x = mlp(), data(40)
    refs = data(6) * 0.5
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for name, args in (("integrated_gradients", dict(target=1, n_steps=16)),
                           ("expected_gradients", dict(references=refs, target=2, n_samples=9, seed=11))):
            phi = sa.distributed.attribute(name, net, x, chunks=10, client=client, **args)
            close(phi.compute(), getattr(sa, name)(net, x, **args))
