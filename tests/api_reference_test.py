"""The API reference (docs/api/*.md) renders every public symbol of every subpackage.

A `::: target` directive of mkdocstrings renders an object, or a whole module (all of its
documented members, or those its `members:` option lists). A public name (in a subpackage's
`__all__`) counts as rendered when a directive names it, or names the module that defines it
without leaving it out of `members:`. Constants (dicts, schemas) are rendered only with a
docstring, so for them the page must name them in its text instead.
"""

import glob
import importlib
import inspect
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPACKAGES = (
    "data",
    "layers",
    "backbones",
    "models",
    "losses",
    "evaluation",
    "training",
    "visualization",
)


def _directives(text):
    """`[(target, members or None)]` of the `::: target` blocks of one page."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^::: *([\w.]+) *$", line)
        if not match:
            continue
        members, in_members = None, False
        for option in lines[i + 1 :]:
            if option.strip() and not option.startswith(" "):
                break
            key = option.strip()
            if key.startswith("members:"):
                members, in_members = [], True
            elif in_members and key.startswith("- "):
                members.append(key[2:].strip())
            elif key and not key.startswith("- "):
                in_members = False
        found.append((match.group(1), members))
    return found


def _pages():
    paths = sorted(glob.glob(os.path.join(ROOT, "docs", "api", "*.md")))
    return {os.path.basename(p): open(p, encoding="utf-8").read() for p in paths}


def _rendered(qualified, obj, directives):
    defining = getattr(obj, "__module__", None)
    name = qualified.rsplit(".", 1)[1]
    for target, members in directives:
        if target == qualified or target == f"{defining}.{name}":
            return True
        if target == defining and (members is None or name in members):
            return True
    return False


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_every_public_symbol_is_in_the_api_reference(subpackage):
    module = importlib.import_module(f"keras_asanet.{subpackage}")
    pages = _pages()
    directives = [d for text in pages.values() for d in _directives(text)]
    text = "\n".join(pages.values())
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not _rendered(f"keras_asanet.{subpackage}.{name}", obj, directives):
                missing.append(name)
        elif not re.search(rf"`[\w.]*\b{re.escape(name)}\b", text):
            missing.append(name)
    assert not missing, (
        f"keras_asanet.{subpackage} exports {missing}, which no page of docs/api renders "
        "(a `::: keras_asanet.<subpackage>.<name>` directive, or for a constant its name in "
        "backticks in the page's text)."
    )


def test_the_directive_parser_reads_members():
    text = "# T\n\n::: a.b\n    options:\n      members:\n        - x\n        - y\n::: a.c\n"
    assert _directives(text) == [("a.b", ["x", "y"]), ("a.c", None)]
