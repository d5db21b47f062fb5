"""Write docs/configuration.md from src/openr2v/config.py: every setting, its variable, default and docstring.

    python scripts/config_reference.py           # rewrite the page
    python scripts/config_reference.py --check   # exit 1 when the page is stale (tests/test_config.py runs it)

The page is generated so it cannot drift from the code: edit the docstrings in config.py, not the page.
Groups follow the ``# -- group ---`` comments in the Settings class.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "src" / "openr2v" / "config.py"
PAGE = ROOT / "docs" / "configuration.md"
GROUP = re.compile(r"^\s*# -- (.+?) -+\s*$")


@dataclass
class Setting:
    name: str
    annotation: str
    default: str
    doc: str


@dataclass
class Group:
    title: str
    settings: list[Setting] = field(default_factory=list)


def _default(node: ast.expr | None) -> str:
    if node is None:
        return "(required)"
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Field":
        for kw in node.keywords:
            if kw.arg == "default":
                return _default(kw.value)
        return "(see text)"
    return ast.unparse(node)


def read_groups(source: str) -> list[Group]:
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    lines = source.splitlines()
    titles = {i + 1: m.group(1) for i, line in enumerate(lines) if (m := GROUP.match(line))}
    groups = [Group("general")]
    body = cls.body
    for k, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        for line in sorted(t for t in titles if t < node.lineno):
            if not any(g.title == titles[line] for g in groups):
                groups.append(Group(titles[line]))
        nxt = body[k + 1] if k + 1 < len(body) else None
        doc = ""
        if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            doc = " ".join(nxt.value.value.split())
        groups[-1].settings.append(Setting(node.target.id, ast.unparse(node.annotation), _default(node.value), doc))
    return [g for g in groups if g.settings]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(groups: list[Group]) -> str:
    out = ["# Configuration reference", "",
           "Generated from `src/openr2v/config.py` by `scripts/config_reference.py`; do not edit by hand.",
           "Every setting is an environment variable `OPENR2V_<NAME>`; `openr2v serve` flags override some.",
           "Deprecated names still work and log a warning: "
           + ", ".join(f"`{old}` (now `{new}`)" for old, new in _deprecated().items()) + ".", ""]
    for g in groups:
        out += [f"## {g.title[:1].upper()}{g.title[1:]}", "", "| variable | type | default | what |",
                "|---|---|---|---|"]
        for s in g.settings:
            out.append(f"| `OPENR2V_{s.name.upper()}` | `{_cell(s.annotation)}` | `{_cell(s.default)}` "
                       f"| {_cell(s.doc)} |")
        out.append("")
    return "\n".join(out)


def _deprecated() -> dict[str, str]:
    tree = ast.parse(CONFIG.read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "DEPRECATED_ENV" and node.value:
            return ast.literal_eval(node.value)  # type: ignore[no-any-return]
    return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is stale")
    args = ap.parse_args()
    page = render(read_groups(CONFIG.read_text()))
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(f"{PAGE.relative_to(ROOT)} is stale: run `python scripts/config_reference.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
