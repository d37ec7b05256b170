"""Plots never change matplotlib's backend nor pyplot's state (issue 8): after `%matplotlib inline` a plot with
``path=`` used to switch the session to Agg because it did not recognise the backend's name."""
import sys
import types

import numpy as np
import pytest

import swiftattr as sa
from conftest import small_cnn

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

BACKEND = "module://swiftattr_test_backend"


@pytest.fixture
def foreign_backend():
    """A backend whose name the library cannot know (as the notebook's inline backend), Agg underneath."""
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureManagerBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    module = types.ModuleType("swiftattr_test_backend")
    module.FigureCanvas = FigureCanvasAgg
    module.FigureManager = FigureManagerBase
    module.show = lambda *a, **k: None
    sys.modules[module.__name__] = module
    previous = matplotlib.get_backend()
    matplotlib.use(BACKEND)
    assert matplotlib.get_backend() == BACKEND
    figures = plt.get_fignums()
    yield plt, figures
    matplotlib.use(previous)
    del sys.modules[module.__name__]


def rate_result():
    rng = np.random.default_rng(16)
    return sa.rate(esa_mean=rng.standard_normal((2, 6)), esa_cov=np.stack([np.eye(6), 2 * np.eye(6)]))


def test_image_attributions_keeps_the_backend(foreign_backend, tmp_path, rng):
    plt, figures = foreign_backend
    net = small_cnn(rng)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    phi = sa.saliency(net, x, target=0)
    for path in (None, tmp_path / "maps.png", str(tmp_path / "maps2.png")):
        fig = sa.plot.image_attributions(x, phi, path=path, method_names=["saliency"], titles=["a", "b", "c"])
        assert matplotlib.get_backend() == BACKEND
        assert plt.get_fignums() == figures  # no pyplot figure left behind
        assert isinstance(fig, Figure) and len(fig.axes) == 6
        if path is not None:
            assert (tmp_path / str(path).split("/")[-1]).stat().st_size > 1000


def test_rate_plot_keeps_the_backend(foreign_backend, tmp_path):
    plt, figures = foreign_backend
    axes = sa.plot.rate(rate_result(), top=4, path=tmp_path / "rate.png")
    assert matplotlib.get_backend() == BACKEND
    assert plt.get_fignums() == figures
    assert len(axes) == 2 and isinstance(axes.figure, Figure) and axes[1].figure is axes.figure
    assert axes._repr_png_().startswith(b"\x89PNG")  # a notebook displays the figure
    assert len(axes[0].patches) == 4  # top=4 bars
    assert (tmp_path / "rate.png").stat().st_size > 1000
    # Drawing into the caller's axes uses them and creates nothing else.
    fig = Figure()
    mine = fig.subplots(2, 1)
    assert sa.plot.rate(rate_result(), axes=mine) == list(mine)
    assert plt.get_fignums() == figures


def test_plot_arguments(tmp_path):
    res = rate_result()
    with pytest.raises(sa.SwiftAttrError, match="top: expected an integer, got 1.5"):
        sa.plot.rate(res, top=1.5)
    with pytest.raises(sa.SwiftAttrError, match="top must be in"):
        sa.plot.rate(res, top=0)
    with pytest.raises(sa.SwiftAttrError, match="path: the path contains a NUL byte"):
        sa.plot.image_attributions(np.ones((1, 4, 4)), np.ones((1, 4, 4)), path=str(tmp_path / "a\0.png"))
    with pytest.raises(sa.SwiftAttrError, match="axes: expected 2 Axes"):
        sa.plot.rate(res, axes=[Figure().subplots()])
