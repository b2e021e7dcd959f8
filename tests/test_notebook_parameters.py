"""The notebooks' parameters cells, without running a notebook: papermill reads them without a
warning, every numeric parameter has a rule in repro.checks, and every notebook applies those
rules in its first code cell (so a papermill user gets the runner's messages)."""
import logging

import nbformat
import papermill
import pytest

from repro import checks, runner

NOTEBOOKS = runner.list_notebooks()


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_papermill_parses_the_parameters_cell_without_warnings(name, tmp_path, caplog):
    nb = runner.read_notebook(NOTEBOOKS[name])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    with caplog.at_level(logging.WARNING):
        found = papermill.inspect_notebook(str(path))
    assert "profile" in found
    # papermill splits the cell at '=' signs: a comment holding one (">=", "==") breaks its line
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("papermill")]


def _numeric(default, annotation) -> bool:
    names = (annotation or "").replace(" ", "").split("|")
    return ((isinstance(default, (int, float)) and not isinstance(default, bool))
            or "int" in names or "float" in names)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_numeric_parameter_has_a_rule(name):
    params = runner.notebook_parameters(NOTEBOOKS[name])
    types = runner.parameter_types(NOTEBOOKS[name])
    ruled = set(checks.COUNTS) | checks.POSITIVE | checks.FRACTIONS | checks.OPEN_FRACTIONS | checks.NON_NEGATIVE
    unruled = [k for k, v in params.items() if _numeric(v, types.get(k)) and k not in ruled]
    assert not unruled, f"{name}: add {unruled} to a rule in repro/checks.py"
    # and every default passes its own rule
    for key, value in params.items():
        checks.check_parameter(key, value) if key not in ("checkpoint", "data_dir") else None


@pytest.mark.parametrize("name", sorted(n for n in NOTEBOOKS if n != "report"))
def test_every_notebook_checks_its_parameters_first(name):
    nb = runner.read_notebook(NOTEBOOKS[name])
    i = runner._parameters_index(nb, NOTEBOOKS[name])
    first = next(c for c in nb.cells[i + 1:] if c.cell_type == "code")
    lines = first.source.splitlines()
    assert "check_parameters(globals())" in lines, f"{name}: its first code cell must call check_parameters(globals())"
    # before the parameters are used, starting with the profile
    uses = [j for j, line in enumerate(lines) if "get_profile(" in line and not line.startswith(("from ", "import "))]
    assert uses and lines.index("check_parameters(globals())") < uses[0]
