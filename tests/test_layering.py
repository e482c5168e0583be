"""The floors of the house: a package imported alone never loads a package above it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# lowest first; a package may import its own floor and every floor below it
FLOORS = [
    ["archlab.errors", "archlab._io", "archlab._optional", "archlab._device", "archlab._lock"],
    ["archlab.graph", "archlab.space", "archlab.data", "archlab.plots"],
    ["archlab.ghn"],
    ["archlab.engine"],
    ["archlab.analysis", "archlab.search"],
    ["archlab.report"],
    ["archlab.cli"],
]
FLOOR_OF = {pkg: i for i, floor in enumerate(FLOORS) for pkg in floor}


def _package_of(module: str) -> str | None:
    for pkg in sorted(FLOOR_OF, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return None


def _loaded_after_import(pkg: str) -> list[str]:
    code = (f"import importlib, json, sys; importlib.import_module({pkg!r}); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('archlab'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _existing(pkg: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(pkg) is not None


@pytest.mark.parametrize("pkg", [p for floor in FLOORS for p in floor])
def test_package_loads_nothing_above_its_floor(pkg):
    if not _existing(pkg):
        pytest.skip(f"{pkg} does not exist yet")
    floor = FLOOR_OF[pkg]
    above = [m for m in _loaded_after_import(pkg)
             if (p := _package_of(m)) is not None and FLOOR_OF[p] > floor]
    assert not above, f"importing {pkg} (floor {floor}) loaded higher modules: {above}"


def test_cli_help_does_not_import_torch():
    code = ("import sys; from archlab.cli import build_parser; build_parser([]); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
