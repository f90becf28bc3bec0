"""Collects tests/firmware/test_*.py as MicroPython tests.

Each file runs once in the MicroPython Unix port (`micropython`, from the virtual
environment); each of its `test_*` functions becomes a pytest item with its own result,
and its `@req(...)` decorators become `req` marks.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("fwrun.py")
TIMEOUT_S = 600


def micropython_command() -> str:
    beside = Path(sys.executable).with_name("micropython")
    found = str(beside) if beside.exists() else shutil.which("micropython")
    if not found:
        raise pytest.UsageError("micropython not found: run `make setup`")
    return found


def pytest_pycollect_makemodule(module_path: Path, parent):
    if module_path.name.startswith("test_"):
        return MicroPythonFile.from_parent(parent, path=module_path)
    return None


def find_tests(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def find_test_names(path: Path) -> list[str]:
    return [node.name for node in find_tests(path)]


class MicroPythonFile(pytest.File):
    def collect(self):
        for node in find_tests(self.path):
            item = MicroPythonTest.from_parent(self, name=node.name)
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "req":
                    ids = [a.value for a in dec.args if isinstance(a, ast.Constant)]
                    item.add_marker(pytest.mark.req(*ids))
            yield item

    def results(self) -> dict[str, tuple[bool, str]]:
        """Run every collected test of this file in one process, once."""
        cached = getattr(self, "_results", None)
        if cached is not None:
            return cached
        names = find_test_names(self.path)
        with tempfile.TemporaryDirectory(prefix="tg-fw-") as tmp:  # the run's files (fixtures.Rig), removed after
            env = dict(os.environ, MICROPYPATH="", TG_TEST_TMP=tmp)
            proc = subprocess.run(
                [micropython_command(), "-X", "heapsize=8M", str(RUNNER), str(ROOT), str(self.path), *names],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                env=env,
                cwd=str(ROOT),
            )
        results: dict[str, tuple[bool, str]] = {}
        current, lines = None, []
        for line in proc.stdout.splitlines():
            if line.startswith("@@TG-START "):
                current, lines = line.split(" ", 1)[1], []
            elif line.startswith(("@@TG-PASS ", "@@TG-FAIL ")) and current:
                results[current] = (line.startswith("@@TG-PASS"), "\n".join(lines))
                current = None
            else:
                lines.append(line)
        tail = "\n".join(lines) + "\n" + proc.stderr
        for name in names:
            results.setdefault(name, (False, "the MicroPython run ended before this test finished:\n" + tail))
        self._results = results
        return results


class MicroPythonTest(pytest.Item):
    def runtest(self):
        passed, output = self.parent.results()[self.name]
        if not passed:
            raise MicroPythonFailure(output)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return f"on MicroPython:\n{excinfo.value.args[0]}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name} (MicroPython)"


class MicroPythonFailure(Exception):
    pass
