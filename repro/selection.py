"""What a command asks for (notebook names, a profile, -p values), checked as a whole before
anything runs, so a typo costs nothing and touches nothing under results/ (a UsageError; the CLI
exits 2). `jobs_for` turns the request into the notebooks to run, in order, each with the -p
values it declares.
"""
from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import INJECTED, UsageError, list_notebooks, notebook_parameters, ordered, parameter_types
from .checks import check_parameter
from .profiles import PROFILES


@dataclass
class Job:
    name: str
    path: Path
    params: dict = field(default_factory=dict)  # the -p values this notebook declares
    types: dict = field(default_factory=dict)  # annotations of its parameters


def jobs_for(names, profile: str, assignments=(), nb_dir=None) -> list[Job]:
    """Check the whole request and return the jobs to run, in order; raises UsageError."""
    available = list_notebooks(nb_dir)
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    if not names:
        raise UsageError(f"name a notebook or 'all'; notebooks: {', '.join(ordered(available))}")
    selected = []
    for name in names:
        if name == "all":
            selected += list(available)
        elif name in available:
            selected.append(name)
        else:
            near = difflib.get_close_matches(name, list(available), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise UsageError(f"unknown notebook {name!r}{hint}; notebooks: "
                             f"{', '.join(ordered(available)) or '(none)'}, all")
    jobs = []
    for name in ordered(selected):
        params = notebook_parameters(available[name])
        missing = [k for k in INJECTED if k not in params]
        if missing:
            raise UsageError(f"{available[name]}: the parameters cell must declare "
                             f"{' and '.join(missing)} (the runner sets them)")
        jobs.append(Job(name, available[name], params, parameter_types(available[name])))

    values = {}
    for item in assignments:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"-p expects key=value, got {item!r}")
        if key in INJECTED:
            raise UsageError(f"-p {key}: the runner sets {key} (use "
                             f"{'--profile' if key == 'profile' else '--results-dir'})")
        values[key] = parse_value(text)
    for key, value in values.items():
        declaring = [j for j in jobs if key in j.params]
        if not declaring:
            lists = "; ".join(f"{j.name}: {', '.join(k for k in j.params if k not in INJECTED) or '(none)'}"
                              for j in jobs)
            raise UsageError(f"-p {key}: no selected notebook has a parameter {key!r}. "
                             f"Parameters — {lists}")
        for job in declaring:
            default, annotation = job.params[key], job.types.get(key)
            if annotation and not _annotation_ok(value, annotation):
                raise UsageError(f"-p {key}: {job.name} expects {annotation}, got "
                                 f"{type(value).__name__} {value!r}")
            if not _type_ok(value, default):
                expected = type(default).__name__ + (" (or int)" if isinstance(default, float) else "")
                hint = f"; to pass text, quote it: -p {key}='\"{text}\"'" if isinstance(default, str) else ""
                raise UsageError(f"-p {key}: {job.name} expects {expected} (default {default!r}), "
                                 f"got {type(value).__name__} {value!r}{hint}")
    for key, value in values.items():
        _check_domain(key, value)
    for job in jobs:
        job.params = {k: v for k, v in values.items() if k in job.params}
    return jobs


def parse_value(text: str):
    """-p values are Python literals (0.1, None, (0, 1), 'MRPC'); anything else is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict, "None": type(None)}


def _annotation_ok(value, annotation: str) -> bool:
    """Does `value` fit an annotation such as `float | None` or `list[str] | None`? Only the
    outer types are checked; an annotation we do not understand checks nothing."""
    def members(node):  # the alternatives of a `A | B | ...` union
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return members(node.left) + members(node.right)
        if isinstance(node, ast.Subscript):  # list[str] -> list
            node = node.value
        if isinstance(node, ast.Constant) and node.value is None:
            return ["None"]
        return [node.id] if isinstance(node, ast.Name) else ["?"]
    try:
        names = members(ast.parse(annotation, mode="eval").body)
    except SyntaxError:
        return True
    if any(n not in _TYPES for n in names):
        return True
    if value is None:
        return "None" in names
    return any(_type_ok(value, _TYPES[n]()) for n in names if n != "None")


def _type_ok(value, default) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):  # True is an int; don't mix them
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _check_domain(key: str, value) -> None:
    """Values whose valid set the package knows (task names, seeds, counts >= 1, learning rates
    and epochs > 0, folders that must exist, ...: the rules of repro.checks, which the notebooks
    also apply to themselves) are checked up front, so a typo fails in a second instead of an
    hour into a batch, with nothing under results/ touched."""
    try:
        check_parameter(key, value)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
        text = str(e)
        raise UsageError(f"-p {text}" if text.startswith(key) else f"-p {key}: {text}") from None
