"""The traceability matrix, generated from the tests: requirement -> tests that prove it.

Requirement IDs are those in docs/safety.md; test marks are `@req("SR-...")` in the
firmware tests and `@pytest.mark.req("SR-...")` in host and HIL tests. Prints a Markdown
table and exits non-zero when a requirement has no test or a test names an unknown ID.
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQ_ID = re.compile(r"\|\s*(SR-[A-Z]+-\d+)\s*\|")


def requirements(text: str) -> list[str]:
    return list(dict.fromkeys(REQ_ID.findall(text)))


def marks(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        for dec in node.decorator_list:
            if isinstance(dec, ast.Call):
                func = dec.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "req":
                    for arg in dec.args:
                        if isinstance(arg, ast.Constant):
                            yield arg.value, f"{path.relative_to(ROOT)}::{node.name}"


def main() -> int:
    known = requirements((ROOT / "docs" / "safety.md").read_text())
    found: dict[str, list[str]] = {}
    for folder in ("tests", "hil"):
        for path in sorted((ROOT / folder).rglob("test_*.py")):
            for rid, test in marks(path):
                found.setdefault(rid, []).append(test)
    print("| requirement | tests |\n| --- | --- |")
    for rid in known:
        print(f"| {rid} | {'<br>'.join(found.get(rid, [])) or '**none**'} |")
    missing = [r for r in known if r not in found]
    unknown = sorted(set(found) - set(known))
    if missing:
        print(f"\nrequirements without a test: {', '.join(missing)}")
    if unknown:
        print(f"\ntests naming unknown requirements: {', '.join(unknown)}")
    return 1 if missing or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
