"""Each benchmark script owns one marked section of docs/benchmarks.md and rewrites only that."""

from __future__ import annotations

import os


def write_section(path: str, begin: str, end: str, text: str) -> None:
    """Put ``text`` between the markers ``begin`` and ``end`` in ``path``, replacing what stood
    there; append the section (creating the file) when the markers are absent."""
    block = f"{begin}\n{text.rstrip()}\n{end}"
    doc = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            doc = f.read()
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = (doc.rstrip("\n") + "\n\n" if doc else "# Benchmarks\n\n") + block + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)
