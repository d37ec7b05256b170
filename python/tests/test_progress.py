"""Progress and interruption (swiftattr/_progress.py over sa_set_progress_handler): show_progress on every
long call, increasing counts, a cancel from the C handler raising SwiftAttrError(SA_ERR_CANCELLED), Ctrl-C
(a SIGINT sent by another thread) interrupting a long native call within a chunk as KeyboardInterrupt, and
the network working — with the same numbers — afterwards."""
import inspect
import os
import signal
import sys
import threading

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi, _progress

D, HID, K, N, STEPS = 64, 256, 4, 256, 64


@pytest.fixture(autouse=True)
def two_threads():
    """Row chunks hold at least 4 rows per thread: a fixed thread count fixes the number of chunks."""
    before = sa.get_num_threads()
    sa.set_num_threads(2)
    yield
    sa.set_num_threads(before)


def mlp():
    """D → HID → tanh → K: IG with STEPS steps on N examples is about 7 chunks of the C row loop (2^27
    multiply-adds each: 3·STEPS·(D·HID + HID·K) per example)."""
    rng = np.random.default_rng(3)
    return sa.Sequential([sa.Linear(0.2 * rng.standard_normal((HID, D)).astype(np.float32), np.zeros(HID, np.float32)),
                          sa.Tanh(), sa.Linear(0.2 * rng.standard_normal((K, HID)).astype(np.float32))])


def data(n=N):
    return np.random.default_rng(4).standard_normal((n, D)).astype(np.float32)


class Recorder:
    """Stands in for the progress bar: records every (done, total); ``on_first`` runs at the first report."""

    def __init__(self, on_first=None):
        self.reports, self.closed, self.on_first = [], False, on_first

    def update_to(self, done, total):
        self.reports.append((done, total))
        if self.on_first is not None and len(self.reports) == 1:
            self.on_first()

    def close(self):
        self.closed = True


@pytest.fixture
def recorder(monkeypatch):
    made = []

    def bar(desc):
        made.append(Recorder(*made_args))
        return made[-1]

    made_args = []
    monkeypatch.setattr(_progress, "_bar", bar)
    return made, made_args


LONG_CALLS = [sa.saliency, sa.input_x_gradient, sa.gradient, sa.integrated_gradients, sa.expected_gradients, sa.smoothgrad,
              sa.deeplift, sa.deepshap, sa.integrated_hessians, sa.expected_hessians, sa.contextual_decomposition, sa.acd,
              sa.occlusion, sa.feature_ablation, sa.feature_permutation, sa.shapley_value_sampling, sa.kernel_shap, sa.lime,
              sa.train, sa.rate, sa.rate_last_layer, sa.bayesian_last_layer, sa.explain_globally,
              sa.Network.forward, sa.LazyNetwork.forward]


@pytest.mark.parametrize("fn", LONG_CALLS, ids=lambda f: f.__name__)
def test_every_long_call_takes_show_progress_and_documents_it(fn):
    p = inspect.signature(fn).parameters["show_progress"]
    assert p.default is False and p.kind == inspect.Parameter.KEYWORD_ONLY
    assert "show_progress" in str(inspect.signature(fn))
    assert "show_progress" in fn.__doc__ and "KeyboardInterrupt" in fn.__doc__  # help() explains it


# IG reports examples from the C row loop; Shapley value sampling (8 examples, 50 orders of 64 features)
# reports perturbed inputs from SwiftAttr's evaluation loop, about four pieces of 2^27 multiply-adds.
@pytest.mark.parametrize("name,total", [("integrated_gradients", N), ("shapley_value_sampling", 8 * 50 * (D - 1))])
def test_counts_increase_to_the_total_and_the_result_is_unchanged(recorder, name, total):
    made, _ = recorder
    net, x = mlp(), data()
    if name == "shapley_value_sampling":
        x = x[:8]
        call = lambda **kw: sa.shapley_value_sampling(net, x, target=1, n_samples=50, seed=3, **kw)  # noqa: E731
    else:
        call = lambda **kw: sa.integrated_gradients(net, x, target=1, n_steps=STEPS, **kw)  # noqa: E731
    plain = call()
    shown = call(show_progress=True)
    (bar,) = made
    done = [d for d, _ in bar.reports]
    assert len(done) >= 3, bar.reports
    assert all(b > a for a, b in zip(done, done[1:])), done
    assert bar.reports[-1] == (total, total) and bar.closed
    # The chunking does not depend on the handler: the same computation, bit for bit.
    np.testing.assert_array_equal(shown, plain)


def test_training_reports_epochs(recorder):
    made, _ = recorder
    net, x = mlp(), data(64)
    sa.train(net, x, np.arange(64) % K, epochs=3, batch_size=16, seed=1, progress=False, show_progress=True)
    assert made[0].reports == [(1, 3), (2, 3), (3, 3)]


def test_text_line_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert isinstance(_progress._bar("x"), _progress._TextBar)
    sa.integrated_gradients(mlp(), data(), target=0, n_steps=STEPS, show_progress=True)
    assert f"integrated_gradients: {N}/{N}\n" in capsys.readouterr().err


def test_show_progress_is_checked():
    with pytest.raises(sa.SwiftAttrError, match="show_progress"):
        sa.saliency(mlp(), data(4), target=0, show_progress="yes")


def test_cancel_from_the_handler_raises_and_the_network_still_works():
    """A handler of the caller's own (on a thread other than the main one, where the package installs none
    unless asked) cancels at its second report: SwiftAttrError with SA_ERR_CANCELLED naming the call, no
    report after it, and the same numbers from the network afterwards."""
    net, x = mlp(), data()
    before = sa.integrated_gradients(net, x, target=2, n_steps=STEPS)
    reports, outcome = [], {}

    @_ffi.PROGRESS_FN
    def handler(_user, done, total):
        reports.append((done, total))
        return 1 if len(reports) == 2 else 0

    def run():
        _ffi.lib.sa_set_progress_handler(handler, None)
        try:
            sa.integrated_gradients(net, x, target=2, n_steps=STEPS)
        except sa.SwiftAttrError as e:
            outcome["error"] = e
        finally:
            _ffi.lib.sa_set_progress_handler(_ffi.NO_PROGRESS, None)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    e = outcome["error"]
    assert e.code == _ffi.SA_ERR_CANCELLED == -13
    assert "sa_integrated_gradients" in str(e) and "cancelled" in str(e)
    assert len(reports) == 2 and reports[-1][0] < N
    np.testing.assert_array_equal(sa.integrated_gradients(net, x, target=2, n_steps=STEPS), before)


def interrupt_after_first_report():
    """Sends SIGINT to this process from a timer thread once the call has reported its first chunk."""
    started = threading.Event()
    timer = threading.Thread(target=lambda: started.wait(10) and os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return started.set, timer


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_sigint_interrupts_within_a_chunk_and_the_network_still_works(recorder):
    made, args = recorder
    net, x = mlp(), data(4 * N)
    small = data(8)
    before = sa.integrated_gradients(net, small, target=1, n_steps=STEPS)
    handler = signal.getsignal(signal.SIGINT)
    on_first, timer = interrupt_after_first_report()
    args.append(on_first)
    with pytest.raises(KeyboardInterrupt):
        sa.integrated_gradients(net, x, target=1, n_steps=STEPS, show_progress=True)
    timer.join()
    done = [d for d, _ in made[0].reports]
    # Stopped within a chunk or two of the signal, far from the end (about 28 chunks).
    assert done[-1] < x.shape[0] // 2, done
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back
    np.testing.assert_array_equal(sa.integrated_gradients(net, small, target=1, n_steps=STEPS), before)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_sigint_without_a_progress_bar():
    """The default (show_progress=False) handles Ctrl-C too: a timer thread interrupts a call of about 110
    chunks (seconds of work) shortly after it starts."""
    net, x = mlp(), data(16 * N)
    timer = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sa.integrated_gradients(net, x, target=1, n_steps=STEPS)
    timer.join()
    assert sa.integrated_gradients(net, x[:4], target=1, n_steps=STEPS).shape == (4, D)


def test_forward_shows_progress_and_gives_the_same_outputs(recorder):
    """Network.forward (and net(x), its alias) takes show_progress like the other long calls; the bar reports
    examples up to the batch and the outputs are the same bits."""
    made, _ = recorder
    net, x = mlp(), data()
    plain = net.forward(x)
    np.testing.assert_array_equal(net(x, show_progress=True), plain)
    (bar,) = made
    assert bar.closed and bar.reports and bar.reports[-1][0] == bar.reports[-1][1]
    with pytest.raises(sa.SwiftAttrError, match="show_progress"):
        net.forward(x, show_progress=1)

