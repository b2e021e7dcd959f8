"""Code fingerprints: which of the package's code computed a record's numbers.

A unit's record holds `code`, a digest of every package function its run called and of the
top-level declarations (constants, dataclass fields) those functions name, so that editing code
a unit never ran (another notebook's plot, a docstring, a comment) stales nothing.

Scheme 2 (records carry `"scheme": 2`) is keyed so that moving code keeps a record current:
- `"train.py::Loop.run"`: the function's syntax tree, without docstring, comments, positions and
  import statements (an import says where a name lives, not what is computed);
- `"train.py::=TrainConfig"`: one declaration (an assignment, or a class without its methods);
- a key is looked up in the module it was recorded in; where that module no longer defines the
  name (the code moved), in every module of the package, by the same qualified name;
- `fingerprints.json` `aliases` maps a (key, digest) to the (key, digest) that replaced it, each
  with why it computes the same numbers (a rename, or a body change re-run bit-identically).

Scheme 1 (records made before) keyed function digests that included import lines, and one
`"train.py::<module>"` digest of every declaration of a module, its import lines included. Such a
key is current while its module still gives that digest; after that through the table `frozen`
in fingerprints.json, written by `freeze()` (`python -m repro fingerprints freeze`) while it
still held: it maps each scheme-1 (key, digest) to the scheme-2 keys of the same code, which
then survive moves as above. Freezing adds entries, never removes or edits one.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TABLE = PACKAGE / "fingerprints.json"
SCHEME = 2
# files whose code moves, stores or judges numbers without computing them; profile values that
# matter are in each unit's config
NOT_NUMERIC_FILES = {"runner.py", "report.py", "results.py", "study.py", "bench.py", "bench_steps.py", "bench_finetune.py", "launch.py", "__main__.py",
                     "__init__.py", "profiles.py", "fingerprint.py", "control.py", "checks.py", "rules.py", "stats.py",
                     "report_store.py", "claims_pld.py", "claims_earlybert.py", "restamp.py", "store.py", "machines.py", "appendix.py", "report_figures.py",
                     "catalogue.py", "selection.py", "outputs.py", "execute.py", "plan.py", "views_pld.py", "views_earlybert.py",
                     "unit_context.py", "judges.py"}
_ANONYMOUS = ("<lambda>", "<listcomp>", "<genexpr>", "<dictcomp>", "<setcomp>", "<module>")


# ----------------------------------------------------------------------------- digests

def _strip_docstring(node):
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node = copy.copy(node)
        node.body = body[1:]
    return node


def _hash(node) -> str:
    """ast.dump ignores comments, line numbers and spacing."""
    return hashlib.sha256(ast.dump(_strip_docstring(node)).encode()).hexdigest()[:12]


class _NoImports(ast.NodeTransformer):
    def visit_Import(self, node):
        return None
    visit_ImportFrom = visit_Import


class _NoFunctions(ast.NodeTransformer):
    def visit_FunctionDef(self, node):
        return None
    visit_AsyncFunctionDef = visit_FunctionDef


def _without_imports(node):
    node = _NoImports().visit(copy.deepcopy(node))
    for n in ast.walk(node):  # a body left empty (a function that only imported) stays valid
        if isinstance(getattr(n, "body", None), list) and not n.body and not isinstance(n, ast.Module):
            n.body = [ast.Pass()]
    return node


@dataclass(frozen=True)
class Source:
    """One file's digests: `functions` (qualified name -> scheme 2), `v1` (qualified name and
    "<module>" -> scheme 1), `declarations` (NAME -> digest), `names` (qualified name -> the
    names its body uses), `lines` ("@line" -> qualified name, for Python 3.10's call traces)."""
    functions: dict
    v1: dict
    declarations: dict
    names: dict
    lines: dict


@functools.lru_cache(maxsize=128)
def _parse(text: str) -> Source:
    tree = ast.parse(text)
    functions, v1, names, lines = {}, {}, {}, {}

    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + node.name
                functions[name], v1[name] = _hash(_without_imports(node)), _hash(node)
                names[name] = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name)) | \
                    frozenset(n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute))
                lines[f"@{min([node.lineno] + [d.lineno for d in node.decorator_list])}"] = name
                walk(node.body, name + ".<locals>.")
            elif isinstance(node, ast.ClassDef):
                walk(node.body, prefix + node.name + ".")

    walk(tree.body, "")
    declarations, other = {}, []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, ast.ClassDef):
            declarations[node.name] = _hash(_without_imports(_NoFunctions().visit(copy.deepcopy(node))))
            continue
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        assigned = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        if assigned:
            digest = _hash(_without_imports(node))
            for name in assigned:  # an augmented assignment later folds into the first
                declarations[name] = digest if name not in declarations else \
                    hashlib.sha256((declarations[name] + digest).encode()).hexdigest()[:12]
        else:
            other.append(node)
    if other:  # top-level code that assigns nothing by name (an `if`, a `try` around an import)
        declarations["<other>"] = _hash(_without_imports(ast.Module(body=other, type_ignores=[])))
    v1["<module>"] = _hash(_NoFunctions().visit(copy.deepcopy(tree)))
    return Source(functions, v1, declarations, names, lines)


def source(path: Path) -> Source | None:
    path = Path(path)
    return _parse(path.read_text()) if path.exists() else None  # keyed by content: edits within a clock tick count


def numeric_files(root: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.py") if p.name not in NOT_NUMERIC_FILES)


# ----------------------------------------------------------------------------- recording

_ACTIVE: list[set] = []  # call sets of the units running now (a unit may ask for another inside its run)
_PKG_PREFIX = str(PACKAGE) + os.sep


def _profile_hook(frame, event, arg):
    if event == "call":
        code = frame.f_code
        if code.co_filename.startswith(_PKG_PREFIX):
            name = getattr(code, "co_qualname", None) or f"@{code.co_firstlineno}"  # Python 3.10: by line
            for calls in _ACTIVE:
                calls.add((code.co_filename, name))


@contextlib.contextmanager
def traced_calls():
    """Collect (file, qualified name) of every package function called inside the block."""
    calls: set = set()
    previous = sys.getprofile()
    _ACTIVE.append(calls)
    sys.setprofile(_profile_hook)
    try:
        yield calls
    finally:
        _ACTIVE.remove(calls)
        sys.setprofile(previous if previous is not _profile_hook or _ACTIVE else None)


@functools.lru_cache(maxsize=1)
def loaded_source() -> dict[str, Source]:
    """The package as this process found it when its first Study was made (a notebook imports
    repro first): what runs, even if the files are edited while a unit trains."""
    return {str(p): source(p) for p in PACKAGE.rglob("*.py")}


def code_fingerprint(calls) -> dict[str, str]:
    """{"scheme": 2, "train.py::Loop.train_step": digest, "train.py::=TrainConfig": digest, ...}
    for the package functions in `calls` (from traced_calls) whose files compute numbers, and the
    declarations of those files that the functions name (a class's own fields when a method ran)."""
    out, used = {}, set()
    for filename, name in sorted(calls):
        path = Path(filename)
        if path.name in NOT_NUMERIC_FILES or any(a in name for a in _ANONYMOUS):
            continue
        src = loaded_source().get(str(path)) or source(path)
        name = src.lines.get(name, name) if src else name
        if src is None or name not in src.functions:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        out[f"{rel}::{name}"] = src.functions[name]
        used |= src.names[name] | {name.split(".")[0]}  # a method: its class's declaration
    for key, src in loaded_source().items():
        if src is None or Path(key).name in NOT_NUMERIC_FILES:
            continue
        rel = Path(key).relative_to(PACKAGE).as_posix()
        for decl, digest in src.declarations.items():
            if decl in used:
                out[f"{rel}::={decl}"] = digest
    return {"scheme": SCHEME, **out} if out else {}


def code_digest() -> str:
    """One digest of the numeric package source as this process loaded it (a checkpoint's stamp
    when its run was killed outright)."""
    numeric = {k: [v.functions, v.declarations] for k, v in sorted(loaded_source().items())
               if v is not None and Path(k).name not in NOT_NUMERIC_FILES}
    return hashlib.sha256(json.dumps(numeric, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- checking

def read_table(path: Path = TABLE) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {"frozen": {}, "aliases": {}}


def _package(root: Path) -> dict[str, Source]:
    """Every module of the package as it reads now, by path relative to it: read once per check
    (a record's keys are looked up many times, moved ones in every module)."""
    return {p.relative_to(root).as_posix(): source(p) for p in sorted(Path(root).rglob("*.py"))}


def _lookup(rel: str, name: str, pkg: dict) -> tuple[str | None, list[str]]:
    """The digest `name` has in module `rel` now, and (where `rel` no longer defines it) the
    digests every module of the package gives that name."""
    def get(src):
        if src is None:
            return None
        return src.declarations.get(name[1:]) if name.startswith("=") else src.functions.get(name)
    here = get(pkg.get(rel))
    if here is not None:
        return here, []
    return None, [d for src in pkg.values() if (d := get(src)) is not None]


def _current_v2(key: str, digest: str, pkg: dict, aliases: dict, seen=()) -> bool:
    rel, name = key.split("::", 1)
    here, elsewhere = _lookup(rel, name, pkg)
    if here == digest or (here is None and digest in elsewhere):
        return True
    alias = aliases.get(f"{key}@{digest}")
    if alias is None and here is None:  # moved since: an alias written under the module it lives in now
        alias = next((a for k, a in aliases.items() if k.split("::", 1)[1] == f"{name}@{digest}"), None)
    if alias and alias["to"] not in seen:
        new_key, new_digest = alias["to"].rsplit("@", 1)
        return _current_v2(new_key, new_digest, pkg, aliases, seen + (alias["to"],))
    return False


def _names_used(code: dict, pkg: dict) -> set[str]:
    """The names a record's functions use, as they read now (where one changed, the record is
    stale for that function anyway), and their classes' names."""
    used = set()
    for key in code:
        if "::" in key and not key.endswith("::<module>"):
            rel, name = key.split("::", 1)
            src = pkg.get(rel)
            found = src.names.get(name) if src else None
            if found is None:
                found = next((s.names[name] for s in pkg.values() if s and name in s.names), set())
            used |= found | {name.split(".")[0]}
    return used


def _label(key: str) -> str:
    rel, name = key.split("::", 1)
    module = rel.removesuffix(".py").replace("/", ".")
    if name == "<module>":
        return f"{module} declarations"
    return f"{module}.{name[1:]} (declaration)" if name.startswith("=") else f"{module}.{name}"


def changed(code: dict | None, root: Path = PACKAGE, table: dict | None = None) -> list[str] | None:
    """What of a record's fingerprint differs from the code now ("train.Loop._next_batch",
    "train declarations"); [] when nothing; None when the record has no fingerprint."""
    if code is None:
        return None
    table = read_table() if table is None else table
    aliases, frozen = table.get("aliases", {}), table.get("frozen", {})
    v2 = code.get("scheme") == SCHEME
    pkg, out = _package(root), []
    for key, digest in code.items():
        if key == "scheme":
            continue
        if "::" not in key:  # records made before function-level fingerprints: whole files
            path = root.parent / (key.replace(".", "/") + ".py")
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest()[:12] != digest:
                out.append(key.removeprefix("repro."))
            continue
        if v2:
            ok = _current_v2(key, digest, pkg, aliases)
        else:
            rel, name = key.split("::", 1)
            src = pkg.get(rel)
            ok = src is not None and src.v1.get(name) == digest
            if not ok and f"{key}@{digest}" in frozen:
                # scheme 1 digested every declaration of a module; scheme 2 counts those the
                # record's functions name, and so does this (the functions are checked themselves)
                named = _names_used(code, pkg) if name == "<module>" else None
                ok = all(_current_v2(k, d, pkg, aliases) for k, d in frozen[f"{key}@{digest}"].items()
                         if named is None or k.split("::=", 1)[-1] in named)
            elif not ok and name != "<module>":  # a function without imports digests alike in both
                ok = _current_v2(key, digest, pkg, aliases)
        if not ok:
            out.append(_label(key))
    return out


# ----------------------------------------------------------------------------- freezing

def freeze(root: Path = PACKAGE, path: Path = TABLE) -> int:
    """Map every scheme-1 digest the package gives now to its scheme-2 keys, in `path`: records
    made under scheme 1 then stay current while their code does, wherever it moves. Returns the
    number of entries added; existing entries are never changed."""
    table = read_table(path)
    frozen = table.setdefault("frozen", {})
    table.setdefault("aliases", {})
    added = 0
    for p in numeric_files(root):
        src, rel = source(p), p.relative_to(root).as_posix()
        entries = {f"{rel}::<module>@{src.v1['<module>']}": {f"{rel}::={d}": v for d, v in src.declarations.items()}}
        entries.update({f"{rel}::{name}@{src.v1[name]}": {f"{rel}::{name}": digest}
                        for name, digest in src.functions.items() if src.v1[name] != digest})
        for k, v in entries.items():
            if k not in frozen:
                frozen[k] = v
                added += 1
    Path(path).write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return added
