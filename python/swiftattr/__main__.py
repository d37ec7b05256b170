"""The command line: ``python -m swiftattr explain MODEL INPUTS.npy --method ... --out OUT.npy``.

Loads a model (``.onnx`` through :func:`swiftattr.from_onnx`, a swiftattr model file such as ``.sam``
through :func:`swiftattr.load`), reads a batch of inputs from a ``.npy`` file, runs one attribution method
on it and writes the attributions (float32, one per input value) to a ``.npy`` file, optionally with a
plot. ``python -m swiftattr explain --help`` lists the options.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import os
import sys

import numpy as np

# The methods the command runs: name → whether it needs --references.
METHODS = {
    "saliency": False, "input_x_gradient": False, "integrated_gradients": False, "expected_gradients": True,
    "smoothgrad": False, "deeplift": False, "deepshap": True, "occlusion": False, "feature_ablation": False,
    "shapley_value_sampling": False, "kernel_shap": False, "lime": False, "integrated_hessians": False,
    "expected_hessians": True,
}

EPILOG = """examples:
  python -m swiftattr explain model.onnx x.npy --method integrated_gradients --target 3 --out phi.npy
  python -m swiftattr explain model.sam x.npy --method deepshap --references background.npy \\
      --target predicted --out phi.npy --plot phi.png
  python -m swiftattr explain model.onnx x.npy --method occlusion --option sliding_window_shapes='(1,3,3)' --out phi.npy
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m swiftattr", description="swiftattr: explain trained neural networks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "explain", help="attribute a batch of inputs with one method", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Attributions of the inputs in INPUTS.npy (shape (n, *model input shape), or one example) "
                    "for the model MODEL (.onnx, or a swiftattr model file such as .sam), written to OUT.npy "
                    "(float32, the shape of the method's result).")
    p.add_argument("model", metavar="MODEL", help="an .onnx file, or a swiftattr model file (.sam)")
    p.add_argument("inputs", metavar="INPUTS.npy", help="the batch of inputs (numpy .npy)")
    p.add_argument("--method", required=True, choices=sorted(METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(sorted(METHODS)))
    p.add_argument("--target", default="predicted",
                   help="the class to explain: an index, 'predicted' (each example's largest output; the "
                        "default) or a .npy file of one index per example")
    p.add_argument("--out", required=True, metavar="OUT.npy", help="where to write the attributions")
    p.add_argument("--plot", metavar="OUT.png", help="also draw the attributions (images: heat maps; other "
                   "inputs: the mean |attribution| of each feature)")
    p.add_argument("--baselines", metavar="B.npy", help="baselines (.npy: one example or one per example); default zeros")
    p.add_argument("--references", metavar="R.npy", help="reference examples (expected_gradients, deepshap, expected_hessians)")
    p.add_argument("--n-steps", type=int, help="quadrature steps (path methods)")
    p.add_argument("--n-samples", type=int, help="samples per example (sampling methods)")
    p.add_argument("--seed", type=int, help="seed of the sampling methods")
    p.add_argument("--internal-batch-size", type=int, help="bound on the points evaluated at once (memory)")
    p.add_argument("--output", metavar="NAME", help="the ONNX graph output to explain (default: its only output)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other argument of the method, as a Python literal (repeatable)")
    p.add_argument("--threads", type=int, help="the library's thread count")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return parser


def _load_model(path: str, output):
    import swiftattr as sa

    if not os.path.isfile(path):
        raise SystemExit(f"error: MODEL: no such file: {path}")
    if path.lower().endswith(".onnx"):
        return sa.from_onnx(path, output=output)
    if output is not None:
        raise SystemExit("error: --output applies to ONNX models only")
    return sa.load(path)


def _array(path: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {what}: cannot read {path} as a .npy file ({e})") from None


def _options(pairs) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"error: --option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value  # a bare word, e.g. method=riemann_left
    return options


def _target(text: str, net, x):
    if text == "predicted":
        return np.argmax(net.forward(x), axis=1) if net.output_size > 1 else None
    if text.endswith(".npy"):
        return _array(text, "--target")
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f"error: --target: expected an index, 'predicted' or a .npy file, got {text!r}") from None


def _plot(x, phi, method: str, path: str) -> None:
    import swiftattr as sa

    if phi.shape == x.shape and x.ndim in (3, 4):
        sa.plot.image_attributions(x[:8], phi[:8], path=path)
        return
    from matplotlib.figure import Figure

    importance = np.abs(phi.reshape(phi.shape[0], -1)).mean(axis=0)
    fig = Figure(figsize=(max(4.0, min(12.0, 0.25 * importance.size + 2)), 3))
    ax = fig.subplots()
    ax.bar(np.arange(importance.size), importance, color="#3b6ea8")
    ax.set_xlabel("feature")
    ax.set_ylabel("mean |attribution|")
    ax.set_title(f"{method}: mean |attribution| over {phi.shape[0]} examples", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def explain(args) -> int:
    """Runs the ``explain`` command on parsed arguments: loads the model and inputs, runs the method, writes the
    attributions (and the plot), and prints where they went.

    Parameters
    ----------
    args : argparse.Namespace
        What ``python -m swiftattr explain --help`` lists: ``model``, ``inputs``, ``method``, ``target``,
        ``out``, ``plot``, ``baselines``, ``references``, ``n_steps``, ``n_samples``, ``seed``,
        ``internal_batch_size``, ``output``, ``option`` (a list of "KEY=VALUE"), ``threads``, ``progress``.
        INPUTS of the model's input shape (one example) are taken as a batch of one.

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    SystemExit
        With a message naming the option, for a missing model file, an unreadable .npy, a missing or unwanted
        ``--references``, an option the method does not take, or a malformed ``--option`` or ``--target``.
    SwiftAttrError
        When the method refuses its arguments (:func:`main` turns it into exit status 1).

    Examples
    --------
    >>> import argparse, os, tempfile, numpy as np, swiftattr as sa
    >>> from swiftattr.__main__ import explain
    >>> d = tempfile.mkdtemp()
    >>> sa.Sequential([sa.Linear(np.eye(3, dtype=np.float32))]).save(os.path.join(d, "m.sam"))
    >>> np.save(os.path.join(d, "x.npy"), np.ones((2, 3), np.float32))
    >>> args = argparse.Namespace(model=os.path.join(d, "m.sam"), inputs=os.path.join(d, "x.npy"),
    ...     method="input_x_gradient", target="0", out=os.path.join(d, "phi.npy"), plot=None, baselines=None,
    ...     references=None, n_steps=None, n_samples=None, seed=None, internal_batch_size=None, output=None,
    ...     option=[], threads=None, progress=False)
    >>> explain(args)  # doctest: +ELLIPSIS
    input_x_gradient: attributions of shape (2, 3) written to ...phi.npy
    0
    >>> np.load(os.path.join(d, "phi.npy"))[0].tolist()
    [1.0, 0.0, 0.0]
    """
    import swiftattr as sa

    if args.threads is not None:
        sa.set_num_threads(args.threads)
    net = _load_model(args.model, args.output)
    x = _array(args.inputs, "INPUTS.npy").astype(np.float32, copy=False)
    if x.shape == net.input_shape:
        x = x[None]
    method = getattr(sa, args.method)
    parameters = inspect.signature(method).parameters
    kwargs = {"target": _target(args.target, net, x)}
    if METHODS[args.method]:
        if args.references is None:
            raise SystemExit(f"error: --references is required for {args.method}")
        kwargs["references"] = _array(args.references, "--references")
    elif args.references is not None:
        raise SystemExit(f"error: --references: {args.method} takes no references")
    for name, value in (("baselines", args.baselines and _array(args.baselines, "--baselines")),
                        ("n_steps", args.n_steps), ("n_samples", args.n_samples), ("seed", args.seed),
                        ("internal_batch_size", args.internal_batch_size)):
        if value is None:
            continue
        if name not in parameters:
            raise SystemExit(f"error: --{name.replace('_', '-')}: {args.method} has no {name} argument")
        kwargs[name] = value
    kwargs.update(_options(args.option))
    unknown = [k for k in kwargs if k not in parameters]
    if unknown:
        raise SystemExit(f"error: {args.method} has no argument {', '.join(unknown)}")
    if args.progress:
        kwargs["show_progress"] = True
    phi = np.asarray(method(net, x, **kwargs), dtype=np.float32)
    np.save(args.out, phi)
    print(f"{args.method}: attributions of shape {phi.shape} written to {args.out}")
    if args.plot:
        _plot(x, phi, args.method, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def main(argv=None) -> int:
    """The command line's entry point: ``python -m swiftattr COMMAND ...`` (one command, ``explain``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when the library refused the call (its SwiftAttrError is printed
        to stderr as ``error: ...``).

    Raises
    ------
    SystemExit
        From argparse for unknown or missing options (status 2) and ``--help`` (status 0), and with a message
        for the input errors :func:`explain` reports.

    Examples
    --------
    >>> import os, tempfile, numpy as np, swiftattr as sa
    >>> from swiftattr.__main__ import main
    >>> d = tempfile.mkdtemp()
    >>> sa.Sequential([sa.Linear(2 * np.eye(3, dtype=np.float32))]).save(os.path.join(d, "m.sam"))
    >>> np.save(os.path.join(d, "x.npy"), np.ones((4, 3), np.float32))
    >>> main([  # doctest: +ELLIPSIS
    ...     "explain", os.path.join(d, "m.sam"), os.path.join(d, "x.npy"), "--method", "integrated_gradients",
    ...     "--target", "1", "--n-steps", "8", "--out", os.path.join(d, "phi.npy")])
    integrated_gradients: attributions of shape (4, 3) written to ...phi.npy
    0
    >>> np.load(os.path.join(d, "phi.npy"))[0].round(3).tolist()
    [0.0, 2.0, 0.0]
    """
    args = _parser().parse_args(argv)
    from swiftattr import SwiftAttrError

    try:
        return explain(args)
    except SwiftAttrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
