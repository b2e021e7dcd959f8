"""The catalogue of the study's notebooks: which there are, in which order they run, what each
waits for, and what its parameters cell declares.

A notebook is a jupytext percent-format file notebooks/<name>.py with one cell tagged
`parameters` that declares at least `profile` and `output_dir` (INJECTED: the runner sets them).
Nothing here runs a notebook; it sits low in the layers so that the report can order notebooks
without importing the runner.
"""
from __future__ import annotations

import ast
from pathlib import Path

from . import REPO_ROOT

# The study's notebooks in the order `run all` executes them (pld_glue needs pld_pretraining's checkpoints).
# Notebooks not listed here come after, alphabetically; `report` always runs last.
ORDER: list[str] = [
    "glue_finetune",  # the dense baseline and the end-to-end check
    "gradient_norms", "pld_schedule", "pld_pretraining", "pld_premise", "pld_glue",  # PLD
    "earlybert_glue", "earlybert_squad", "earlybert_pretraining", "ticket_mask_distance",  # EarlyBERT
    "report",
]
# notebooks that read what another one made (its checkpoints): with --jobs they wait for it;
# a notebook that asks for another's units waits for it (else both may train the same unit at once)
DEPENDS = {"pld_glue": {"pld_pretraining"}, "pld_premise": {"pld_pretraining"}, "earlybert_glue": {"glue_finetune"},
           "ticket_mask_distance": {"earlybert_glue", "earlybert_pretraining"}}
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
INJECTED = ("profile", "output_dir")  # set by the runner, never by -p
# Declared by a notebook, set True by the runner: opened in Jupyter (default False), Run All only
# reads recorded runs; executed by the runner, it trains what is missing. -p train=False still wins.
TRAIN = "train"


class UsageError(Exception):
    """Something wrong with the request (or a notebook's parameters cell): nothing was run."""


def list_notebooks(nb_dir: Path | str | None = None) -> dict[str, Path]:
    paths = sorted(Path(nb_dir or NOTEBOOKS_DIR).glob("*.py"))
    return {p.stem: p for p in paths if not p.stem.startswith("_")}


def read_notebook(path: Path):
    import jupytext

    return jupytext.read(path)


def ordered(names) -> list[str]:
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(set(names), key=lambda n: (n == "report", rank.get(n, len(ORDER)), n))


def depends(name: str, names: set[str]) -> set[str]:
    """Which of `names` the notebook waits for: the report waits for every other one."""
    return set(names) - {"report"} if name == "report" else DEPENDS.get(name, set()) & set(names)


def description(nb) -> str:
    """The first line of the first markdown cell, without the heading's #."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.strip():
                    return line.lstrip("#").strip()
    return ""


# ----------------------------------------------------------------------------- parameters cell

def _parameters_index(nb, path) -> int:
    found = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(found) != 1:
        raise UsageError(f"{path}: needs exactly one cell tagged parameters "
                         f"(# %% tags=[\"parameters\"]), found {len(found)}")
    return found[0]


def notebook_parameters(path: Path | str, nb=None) -> dict:
    """The parameters cell's names and default values, in order. Only `name = <literal>` (or
    `name: type = <literal>`) is allowed, because papermill overrides parameters by re-assigning
    them after this cell.

    Why not `papermill.inspect_notebook`: it skips annotated unions (`output_dir: str | None =
    None` is not in its result, and `max_seeds: int | None = None  # ...` logs "Unable to parse
    line"), which is how this study declares every optional parameter
    (tests/test_runner.py::test_papermill_inspect_misses_union_parameters pins it)."""
    return _parse_parameters(path, nb)[0]


def parameter_types(path: Path | str, nb=None) -> dict:
    """name -> annotation text, for parameters declared `name: type = default`. The annotation
    is what -p values are checked against when the default (often None) says nothing."""
    return _parse_parameters(path, nb)[1]


def _parse_parameters(path, nb=None) -> tuple[dict, dict]:
    nb = nb or read_notebook(Path(path))
    source = nb.cells[_parameters_index(nb, path)].source
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise UsageError(f"{path}: the parameters cell is not valid Python: {e}") from None
    params, types = {}, {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring-like note
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
            if isinstance(target, ast.Name):
                types[target.id] = ast.get_source_segment(source, node.annotation)
        try:
            if not isinstance(target, ast.Name):
                raise ValueError
            params[target.id] = ast.literal_eval(node.value)
        except (ValueError, TypeError):
            raise UsageError(f"{path}: the parameters cell may only hold literal assignments "
                             f"(name = 1, 'text', None, (0, 1), ...); line {node.lineno} is "
                             f"`{ast.get_source_segment(source, node)}`") from None
    return params, types


def injected(path: Path, nb, profile: str, output_dir, values: dict) -> dict:
    """The parameters papermill sets in a notebook: the profile and output folder, train=True
    where the notebook declares `train` (the runner runs notebooks to train; one that does not
    declare it gets no such name), then the request's -p values."""
    train = {TRAIN: True} if TRAIN in notebook_parameters(path, nb) else {}
    return {"profile": profile, "output_dir": str(output_dir), **train, **values}
