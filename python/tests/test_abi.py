"""The ctypes bindings agree with CInclude/swiftattr.h: every enum value and status code has a constant of
the same name and value in swiftattr._ffi, every declared function has a binding under its prototype
(copied verbatim as a comment) with argument and result types that fit that prototype, sa_rate_options is
mirrored field for field, and every declaration is documented where it is declared."""
import ctypes
import os
import re

import pytest

from swiftattr import _ffi

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "CInclude", "swiftattr.h")
FFI_SOURCE = os.path.join(os.path.dirname(_ffi.__file__), "_ffi.py")


def _without_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


@pytest.fixture(scope="module")
def header():
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


def _enums(header):
    """{enum name: {constant: value}} for every `typedef enum name { ... } name;`."""
    enums = {}
    for m in re.finditer(r"typedef enum (\w+) \{(.*?)\} \1;", header, re.S):
        entries = {}
        for entry in _without_comments(m.group(2)).split(","):
            if entry.strip():
                name, value = (part.strip() for part in entry.split("="))
                entries[name] = int(value)
        enums[m.group(1)] = entries
    return enums


def _declarations(header):
    """{function name: declaration text} for every `SA_API ...;` (the text as the header has it)."""
    return {re.search(r"(sa_\w+)\(", m.group(0)).group(1): m.group(0)
            for m in re.finditer(r"^SA_API [^;]*;", header, re.M)}


def test_every_enum_value_has_a_constant(header):
    enums = _enums(header)
    for required in ("sa_status", "sa_layer_kind", "sa_ig_method", "sa_nt_type", "sa_deeplift_rule",
                     "sa_maxpool_rule", "sa_projection", "sa_loss", "sa_optimizer", "sa_metric"):
        assert required in enums, required
    header_constants = {}
    for entries in enums.values():
        header_constants.update(entries)
    for name, value in header_constants.items():
        assert getattr(_ffi, name, None) == value, f"_ffi.{name} = {getattr(_ffi, name, None)}, header {value}"
    # No constant in _ffi that the header lacks (a stale or misspelt name).
    prefixes = tuple({re.match(r"SA_[A-Z]+_|SA_", name).group(0) for name in header_constants} - {"SA_"})
    ours = {name for name in vars(_ffi) if name.startswith(prefixes)}
    assert ours <= set(header_constants), sorted(ours - set(header_constants))


def test_status_and_layer_numbering(header):
    enums = _enums(header)
    status = {name: getattr(_ffi, name) for name in enums["sa_status"]}
    assert status == enums["sa_status"]
    assert _ffi.SwiftAttrError("x").code == _ffi.SA_ERR_INVALID_ARGUMENT
    layer = {f"SA_LAYER_{name.upper()}": code for name, code in _ffi.LAYER_KIND.items()}
    assert layer == enums["sa_layer_kind"]
    assert _ffi.LAYER_KINDS == sorted(_ffi.LAYER_KIND, key=_ffi.LAYER_KIND.get)
    # The name tables of the public functions map onto the header's enums, one to one.
    for table, enum in ((_ffi.IG_METHODS, "sa_ig_method"), (_ffi.NT_TYPES, "sa_nt_type"),
                        (_ffi.DEEPLIFT_RULES, "sa_deeplift_rule"), (_ffi.MAXPOOL_RULES, "sa_maxpool_rule"),
                        (_ffi.PROJECTIONS, "sa_projection"), (_ffi.LOSSES, "sa_loss"),
                        (_ffi.OPTIMIZERS, "sa_optimizer"), (_ffi.METRICS, "sa_metric")):
        assert sorted(table.values()) == sorted(enums[enum].values()), enum


def test_version_macro_matches_library(header):
    m = re.search(r"^#define SA_VERSION (\d+)$", header, re.M)
    assert m, "SA_VERSION is not defined"
    assert int(m.group(1)) == _ffi.SA_VERSION == _ffi.lib.sa_version()


def test_every_declaration_is_documented_and_visible(header):
    decls = _declarations(header)
    assert len(decls) >= 40
    # Every prototype-like line at the start of a line carries SA_API.
    bare = re.findall(r"^(?:int|void|const char \*|sa_\w+) \*?sa_\w+\(", header, re.M)
    assert not bare, bare
    for name, text in decls.items():
        before = header[:header.index(text)].rstrip()
        assert before.endswith("*/"), f"{name} has no doc comment right before its declaration"
        comment = before[before.rindex("/*"):]
        assert comment.startswith("/**"), f"{name}: the comment before it is not a /** doc comment */"
    for macro in ("SA_API", "visibility(\"default\")", "__declspec(dllexport)", "__declspec(dllimport)"):
        assert macro in header, macro


# C type of a parameter or result → the ctypes type its binding must use.
_POINTERS = {"float": _ffi.f32p, "double": _ffi.f64p, "int64_t": _ffi.i64p, "uint8_t": _ffi.u8p, "int": ctypes.POINTER(ctypes.c_int),
             "int32_t": _ffi.i32p, "void": ctypes.c_void_p,
             "sa_model": _ffi.model_p, "sa_rate_options": _ffi.rate_options_p, "char": ctypes.c_char_p,
             "sa_train_options": _ffi.train_options_p, "sa_prior": _ffi.prior_p}
_VALUES = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64, "float": ctypes.c_float,
           "double": ctypes.c_double, "size_t": ctypes.c_size_t, "void": None,
           "sa_rate_options": _ffi.RateOptions, "sa_group_scorer": _ffi.group_scorer_t,
           "sa_train_options": _ffi.TrainOptions, "sa_train_callback": _ffi.TRAIN_CALLBACK}


def _ctype(c_type):
    c_type = c_type.replace("const ", "").strip()
    stars = c_type.count("*")
    base = c_type.replace("*", "").strip()
    if stars == 0:
        return _VALUES[base]
    if stars == 2 and base == "sa_model":
        return ctypes.POINTER(_ffi.model_p)
    if stars == 2 and base == "sa_prior":
        return ctypes.POINTER(_ffi.prior_p)
    assert stars == 1, c_type
    return _POINTERS[base]


def _split_prototype(text):
    m = re.match(r"SA_API (.*?)\b(sa_\w+)\((.*)\);$", " ".join(text.split()))
    result, name, params = m.group(1), m.group(2), m.group(3)
    args = [] if params.strip() == "void" else [re.sub(r"\w+$", "", p.strip()) for p in params.split(",")]
    return name, result, args


def test_bindings_fit_their_prototypes(header):
    for name, text in _declarations(header).items():
        fn = getattr(_ffi.lib, name)
        _, result, args = _split_prototype(text)
        assert fn.restype == _ctype(result), (name, result, fn.restype)
        assert fn.argtypes is not None, f"{name} has no binding"
        assert len(fn.argtypes) == len(args), (name, len(fn.argtypes), len(args))
        for i, (have, want) in enumerate(zip(fn.argtypes, args)):
            assert have == _ctype(want), f"{name} argument {i}: ctypes {have.__name__}, C {want}"


def test_each_binding_has_its_prototype_beside_it(header):
    with open(FFI_SOURCE, encoding="utf-8") as f:
        source = f.read()
    for name, text in _declarations(header).items():
        comment = "\n".join("# " + line for line in text.split("\n"))
        at = source.find(comment + f'\n_sig("{name}"')
        assert at >= 0, f"_ffi.py: the binding of {name} is not right under its prototype, as the header has it:\n{comment}"


def _struct_fields(header, name):
    """[(field, ctypes type)] of `typedef struct name { ... } name;` in the header."""
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), header, re.S)
    fields = []
    for decl in _without_comments(m.group(1)).split(";"):
        decl = " ".join(decl.split())
        if decl:
            c_type, field = re.match(r"(.*?)\s*(\w+)$", decl).groups()
            fields.append((field, _ctype(c_type)))
    return fields


def test_rate_options_mirror_the_header(header):
    assert [(n, t) for n, t in _ffi.RateOptions._fields_] == _struct_fields(header, "sa_rate_options")
    defaults = _ffi.lib.sa_rate_default_options()
    assert defaults.struct_size == ctypes.sizeof(_ffi.RateOptions)
    assert (defaults.exact_kld, defaults.projection, defaults.rank, defaults.jitter) == (0, _ffi.SA_PROJECTION_COVARIANCE, 0, 0.0)
    assert not defaults.nullify and not defaults.group_members and not defaults.group_offsets
    assert defaults.nullify_count == defaults.group_count == 0


def test_train_options_and_callback_mirror_the_header(header):
    assert [(n, t) for n, t in _ffi.TrainOptions._fields_] == _struct_fields(header, "sa_train_options")
    d = _ffi.lib.sa_train_default_options()
    assert d.struct_size == ctypes.sizeof(_ffi.TrainOptions)
    assert (d.loss, d.optimizer, d.metric, d.shuffle, d.initialize) == (_ffi.SA_LOSS_CROSS_ENTROPY, _ffi.SA_OPTIMIZER_ADAM,
                                                                       _ffi.SA_METRIC_LOSS, 1, 0)
    assert (d.learning_rate, d.momentum, d.beta1, d.beta2, d.eps, d.weight_decay) == (1e-3, 0.0, 0.9, 0.999, 1e-8, 0.0)
    assert (d.epochs, d.batch_size, d.seed, d.patience) == (10, 32, 0, 0)
    assert not d.priors and d.n_priors == 0
    m = re.search(r"typedef int \(\*sa_train_callback\)\((.*?)\);", header, re.S)
    params = [re.sub(r"\w+$", "", p.strip()) for p in " ".join(m.group(1).split()).split(",")]
    assert list(_ffi.TRAIN_CALLBACK._argtypes_) == [_ctype(p) for p in params]
    assert _ffi.TRAIN_CALLBACK._restype_ == ctypes.c_int
    m = re.search(r"^#define SA_TRAIN_HISTORY_COLUMNS (\d+)$", header, re.M)
    assert int(m.group(1)) == _ffi.TRAIN_HISTORY_COLUMNS
