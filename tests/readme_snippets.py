"""The README's ```python blocks as a notebook, and what failed when one is executed.

Only fences whose info string is exactly ``python`` count (```bash, indented blocks and
other fences are not notebook code). Each block becomes one code cell, in README order,
tagged with the README line its fence opens on, so a failure names the snippet.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Not MLPLAT_*: tests/conftest.py removes those from the environment at import.
README_ENV = "README_UNDER_TEST"

_OPEN = re.compile(r"^```\s*python\s*$")
_FENCE = re.compile(r"^```")
_CLOSE = re.compile(r"^```\s*$")


@dataclass(frozen=True)
class Snippet:
    line: int  # 1-based line of the opening fence
    source: str

    @property
    def first_line(self) -> str:
        return next((s for s in self.source.splitlines() if s.strip()), "")


@dataclass(frozen=True)
class Failure:
    snippet: Snippet
    ename: str
    evalue: str

    def __str__(self) -> str:
        return (
            f"README line {self.snippet.line}: snippet `{self.snippet.first_line.strip()}` "
            f"failed: {self.ename}: {self.evalue}"
        )


def readme_path() -> Path:
    """README.md of the checkout, or the file named by ``$README_UNDER_TEST``."""
    return Path(os.environ.get(README_ENV) or REPO_ROOT / "README.md")


def python_snippets(text: str) -> list[Snippet]:
    """Every ```python fenced block of a Markdown text, in order."""
    snippets: list[Snippet] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            start = index
            body: list[str] = []
            index += 1
            while index < len(lines) and not _CLOSE.match(lines[index]):
                body.append(lines[index])
                index += 1
            if index == len(lines):
                raise ValueError(f"unclosed code fence at line {start + 1}")
            if _OPEN.match(line):
                snippets.append(Snippet(start + 1, "\n".join(body)))
        index += 1
    return snippets


def notebook_of(snippets: list[Snippet]):
    """A notebook with one code cell per snippet (``metadata.readme_line`` on each)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for snippet in snippets:
        cell = nbformat.v4.new_code_cell(snippet.source)
        cell.metadata["readme_line"] = snippet.line
        notebook.cells.append(cell)
    return notebook


def failures(notebook, snippets: list[Snippet]) -> list[Failure]:
    """The executed cells that ended in an error, in order, with their snippet."""
    by_line = {s.line: s for s in snippets}
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                snippet = by_line[cell.metadata["readme_line"]]
                found.append(Failure(snippet, output["ename"], output["evalue"]))
    return found


__all__ = [
    "README_ENV",
    "Failure",
    "Snippet",
    "failures",
    "notebook_of",
    "python_snippets",
    "readme_path",
]
