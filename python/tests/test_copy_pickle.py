"""Networks are values (issue 8): copy, deep copy and pickle never share a C handle that one of them frees,
and a pickle carries the model bytes, so process pools can ship networks."""
import copy
import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import swiftattr as sa
from conftest import small_cnn, smooth_mlp
from test_models import every_layer_cnn, every_layer_net

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(sa.__file__)))

# Run in a child process: before the fix this is a use-after-free that segfaults (or reads freed memory).
COPY_SCRIPT = textwrap.dedent("""
    import copy, gc, os, sys
    import numpy as np
    sys.path.insert(0, {python!r})
    import swiftattr as sa
    rng = np.random.default_rng(0)
    net = sa.Sequential([sa.Linear(rng.standard_normal((16, 6)), rng.standard_normal(16)), sa.ReLU(),
                         sa.Linear(rng.standard_normal((3, 16)), rng.standard_normal(3))])
    x = rng.standard_normal((4, 6)).astype(np.float32)
    before = net.forward(x)
    for make in (copy.copy, copy.deepcopy):
        c = make(net)
        np.testing.assert_array_equal(c.forward(x), before)
        del c
        gc.collect()
        # Churn the allocator so freed model memory is reused.
        junk = [sa.Sequential([sa.Linear(np.full((16, 6), float(i)))]) for i in range(50)]
        del junk
        np.testing.assert_array_equal(net.forward(x), before)
        path = os.path.join({tmp!r}, make.__name__ + ".sam")
        net.save(path)
        np.testing.assert_array_equal(sa.load(path).forward(x), before)
    # The other way round: the original goes, the copies stay.
    shallow, deep = copy.copy(net), copy.deepcopy(net)
    del net
    gc.collect()
    np.testing.assert_array_equal(shallow.forward(x), before)
    np.testing.assert_array_equal(deep.forward(x), before)
    shallow.save(os.path.join({tmp!r}, "after.sam"))
    print("ok")
""")


def test_copies_survive_each_other(tmp_path):
    out = subprocess.run([sys.executable, "-c", COPY_SCRIPT.format(python=PYTHON_DIR, tmp=str(tmp_path))],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("build", [smooth_mlp, small_cnn, every_layer_net, every_layer_cnn])
def test_deepcopy_and_pickle_are_bit_identical(rng, build):
    net = build(rng)
    x = rng.standard_normal((5,) + net.input_shape).astype(np.float32)
    y = net.forward(x)
    phi = sa.integrated_gradients(net, x, target=0, n_steps=8)
    others = [copy.deepcopy(net)] + [pickle.loads(pickle.dumps(net, protocol=p))
                                     for p in range(pickle.HIGHEST_PROTOCOL + 1)]
    for other in others:
        assert isinstance(other, sa.Network)
        assert other._handle.value != net._handle.value  # a handle of its own
        assert other.input_shape == net.input_shape and other.layer_kinds == net.layer_kinds
        assert other.output_size == net.output_size and other.num_layers == net.num_layers
        # The same model bytes and the same computation: equal bit for bit.
        np.testing.assert_array_equal(other.forward(x), y)
        np.testing.assert_array_equal(sa.integrated_gradients(other, x, target=0, n_steps=8), phi)
    del others
    gc.collect()
    np.testing.assert_array_equal(net.forward(x), y)


def test_shallow_copy_shares_one_owner(rng):
    net = smooth_mlp(rng)
    c = copy.copy(net)
    assert c is not net and c._handle.value == net._handle.value
    x = rng.standard_normal((2, 6))
    np.testing.assert_array_equal(c.forward(x), net.forward(x))


def test_pickle_carries_the_model_bytes(rng, tmp_path):
    net = smooth_mlp(rng)
    path = tmp_path / "net.sam"
    net.save(path)
    data = pickle.dumps(net)
    assert path.read_bytes() in data
    # A network inside a container, twice: pickle's memo keeps one object.
    a, b = pickle.loads(pickle.dumps([net, net]))
    assert a is b


def test_pickle_rejects_a_corrupt_payload(rng):
    net = smooth_mlp(rng)
    data = pickle.dumps(net)
    from swiftattr.model import _network_from_model_bytes

    with pytest.raises(sa.SwiftAttrError, match="not a swiftattr model|model file") as e:
        _network_from_model_bytes(b"garbage")
    assert e.value.code == -8
    assert isinstance(pickle.loads(data), sa.Network)


def test_process_pool_with_spawn_ships_networks(rng):
    net = small_cnn(rng)
    xs = [rng.standard_normal((3,) + net.input_shape).astype(np.float32) for _ in range(3)]
    expected = [net.forward(x) for x in xs]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(sa.Network.forward, [net] * len(xs), xs, timeout=180))
        back = pool.submit(copy.deepcopy, net).result(timeout=180)  # and a network comes back
    for r, e in zip(results, expected):
        np.testing.assert_array_equal(r, e)
    np.testing.assert_array_equal(back.forward(xs[0]), expected[0])
