"""pytest --doctest-modules never collects a ``__main__.py``, so the command line's docstring examples run here."""
import doctest

import swiftattr.__main__ as cli


def test_command_line_docstring_examples_run():
    result = doctest.testmod(cli, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
