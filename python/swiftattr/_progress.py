"""Progress bars and Ctrl-C for long native calls, in one place.

Every public function that can run long is wrapped by :func:`long_call`, which adds Captum's
``show_progress=False`` argument. While the function runs, the calling thread's C progress handler
(``sa_set_progress_handler``) is installed: the library calls it between chunks of work with (done, total).
It updates a progress bar when ``show_progress`` is true (tqdm's, when tqdm is installed; a plain text line
on stderr otherwise), and in the main thread it cancels the call when Ctrl-C was pressed: a temporary SIGINT
handler only records the signal, the next progress report returns non-zero, the C call returns
SA_ERR_CANCELLED within one chunk, and the function raises KeyboardInterrupt. The network is not changed by
a cancelled call and stays usable. The previous SIGINT handler is restored when the function returns.
"""
from __future__ import annotations

import functools
import inspect
import signal
import sys
import textwrap
import threading
import time

from . import _ffi

__all__ = ["long_call"]

_local = threading.local()


class _TextBar:
    """A one-line progress display on stderr, for when tqdm is not installed (redrawn at most 10 times a second)."""

    def __init__(self, desc: str, total):
        self.desc, self.total, self.n, self._shown = desc, total, 0, 0.0

    def update_to(self, done: int, total) -> None:
        self.n, self.total = done, total
        now = time.monotonic()
        if now - self._shown >= 0.1 or (total and done >= total):
            self._shown = now
            of = f"/{total}" if total else ""
            sys.stderr.write(f"\r{self.desc}: {done}{of}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _TqdmBar:
    """A tqdm bar, created at the first report (when the total is known); a call that never reports (the
    perturbation methods, RATE) shows one finished step when it ends."""

    def __init__(self, desc: str, tqdm):
        self._desc, self._tqdm, self._bar = desc, tqdm, None

    def update_to(self, done: int, total) -> None:
        if self._bar is None:
            self._bar = self._tqdm(desc=self._desc, total=total, leave=True)
        bar = self._bar
        if done < bar.n:  # a new native call inside the same function: start the bar again
            bar.reset(total=total)
        elif total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        if self._bar is None:
            self.update_to(1, 1)
        self._bar.close()


def _bar(desc: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextBar(desc, None)
    return _TqdmBar(desc, tqdm)


class _Tracker:
    """The state of one wrapped call: its bar, whether SIGINT fired, an exception the callback caught."""

    def __init__(self, desc: str, show: bool, main: bool):
        self.bar = _bar(desc) if show else None
        self.interrupted = False
        self.error = None
        self.previous = None
        self.main = main
        self.callback = _ffi.PROGRESS_FN(self._report)  # kept alive for the duration of the call

    def _report(self, _user, done, total):
        try:
            if self.bar is not None:
                self.bar.update_to(int(done), int(total) or None)
            return 1 if self.interrupted else 0
        except BaseException as e:  # never let an exception cross the C frames; re-raised after the call
            self.error = e
            return 1

    def _on_sigint(self, signum, frame):
        self.interrupted = True

    def __enter__(self):
        if self.main:
            previous = signal.getsignal(signal.SIGINT)
            if previous not in (signal.SIG_IGN, None):
                self.previous = previous
                signal.signal(signal.SIGINT, self._on_sigint)
        _ffi.lib.sa_set_progress_handler(self.callback, None)
        return self

    def __exit__(self, kind, value, tb):
        _ffi.lib.sa_set_progress_handler(_ffi.NO_PROGRESS, None)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.bar is not None:
            self.bar.close()
        if self.error is not None:
            raise self.error
        if self.interrupted:
            # Ctrl-C arrived during the call: it is raised as KeyboardInterrupt once the native call has stopped
            # (the network is consistent again). A handler of the caller's own gets the signal first; when it
            # returns and the call was not cancelled, the call's result stands.
            cancelled = isinstance(value, _ffi.SwiftAttrError) and value.code == _ffi.SA_ERR_CANCELLED
            previous = self.previous
            if callable(previous) and previous is not signal.default_int_handler:
                previous(signal.SIGINT, None)
                if not cancelled:
                    return False
            raise KeyboardInterrupt from None
        return False


def long_call(fn):
    """Adds ``show_progress=False`` (keyword) to ``fn`` and runs it with the progress handler and the Ctrl-C
    handling described in the module notes. Nested wrapped calls (a function calling another) share the
    outer call's handler.

    The wrapper installs the handler only where it has work: always in the main thread (for Ctrl-C), and in
    other threads only when ``show_progress`` is true. Its signature gains ``show_progress`` (before any
    ``**kwargs``) and its docstring describes it (in the "Parameters" section when there is one).

    Parameters
    ----------
    fn : callable
        A function that makes native calls; it must not have a ``show_progress`` parameter itself.

    Returns
    -------
    callable
        The wrapper, with ``fn``'s name and docstring (plus ``show_progress``). Calling it with a
        ``show_progress`` that is not a bool (or numpy bool) raises SwiftAttrError; Ctrl-C during the call
        raises KeyboardInterrupt once the native call has stopped.

    Raises
    ------
    TypeError
        When ``fn`` already has a ``show_progress`` parameter.

    Examples
    --------
    >>> import inspect
    >>> from swiftattr._progress import long_call
    >>> @long_call
    ... def double(x):
    ...     'Twice x.'
    ...     return 2 * x
    >>> double(3), double(4, show_progress=False)
    (6, 8)
    >>> str(inspect.signature(double))
    '(x, *, show_progress: bool = False)'
    >>> "show_progress" in double.__doc__
    True
    """
    signature = inspect.signature(fn)
    if "show_progress" in signature.parameters:
        raise TypeError(f"{fn.__name__} already has a show_progress parameter")
    parameters = list(signature.parameters.values())
    extra = inspect.Parameter("show_progress", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
    at = next((i for i, p in enumerate(parameters) if p.kind == inspect.Parameter.VAR_KEYWORD), len(parameters))
    parameters.insert(at, extra)

    @functools.wraps(fn)
    def wrapper(*args, show_progress=False, **kwargs):
        if getattr(_local, "active", False):
            return fn(*args, **kwargs)
        show = _show(show_progress)
        main = threading.current_thread() is threading.main_thread()
        if not show and not main:
            return fn(*args, **kwargs)
        _local.active = True
        try:
            with _Tracker(fn.__name__, show, main):
                return fn(*args, **kwargs)
        finally:
            _local.active = False

    wrapper.__signature__ = signature.replace(parameters=parameters)
    wrapper.__doc__ = _documented(fn.__doc__)
    return wrapper


SHOW_PROGRESS_DOC = ("show a progress bar (tqdm's when installed, else a line on stderr) while the native call "
                     "runs. Whatever its value, Ctrl-C in the main thread stops the call within one chunk of work "
                     "and raises KeyboardInterrupt; the network stays usable.")


def _documented(doc):
    """``doc`` with ``show_progress`` described: as an entry of a numpy-style Parameters section when there is
    one (at its end), else as a closing paragraph."""
    if not doc or "show_progress" in doc:
        return doc
    lines = doc.split("\n")
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}:
            indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
            end = i + 2
            while end < len(lines) and not (end + 1 < len(lines) and lines[end].strip()
                                            and set(lines[end + 1].strip()) == {"-"}
                                            and lines[end].startswith(indent) and not lines[end][len(indent):].startswith(" ")):
                end += 1
            while end > i + 2 and not lines[end - 1].strip():
                end -= 1
            text = textwrap.fill(SHOW_PROGRESS_DOC[0].upper() + SHOW_PROGRESS_DOC[1:], 108,
                                 initial_indent=indent + "    ", subsequent_indent=indent + "    ")
            return "\n".join(lines[:end] + [f"{indent}show_progress : bool, default False", text] + lines[end:])
    body = doc.rstrip()
    indent = next((l[:len(l) - len(l.lstrip())] for l in lines[1:] if l.strip()), "")
    text = textwrap.fill("``show_progress``: " + SHOW_PROGRESS_DOC, 108, initial_indent=indent, subsequent_indent=indent)
    return f"{body}\n\n{text}\n"


def _show(value) -> bool:
    if isinstance(value, bool):
        return value
    try:
        import numpy as np
        if isinstance(value, np.bool_):
            return bool(value)
    except ImportError:  # pragma: no cover
        pass
    raise _ffi.SwiftAttrError(f"show_progress: expected True or False, got {value!r}")
