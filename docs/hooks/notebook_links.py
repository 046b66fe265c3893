"""MkDocs hook: the tutorials' links to the docs pages, made to work on the site too.

A notebook in `tutorials/` links a docs page as `../docs/results.md`, which is right on GitHub
and in Jupyter. The site renders the same notebook (through the `docs/tutorials` link) at
`tutorials/<name>/`, and mkdocs-jupyter leaves the links of a notebook as written, so there
that link points at `tutorials/docs/results.md`, which does not exist. This rewrites it to the
page's address on the site, `../../results/`, and a link to another tutorial
(`05_looking_inside.ipynb`) to that tutorial's page (`../05_looking_inside/`).
"""

import re

_DOCS_LINK = re.compile(r'href="\.\./docs/([A-Za-z0-9_/.-]+?)\.md(#[^"]*)?"')
_NOTEBOOK_LINK = re.compile(r'href="([A-Za-z0-9_-]+)\.ipynb(#[^"]*)?"')


def rewrite_docs_links(html):
    """`html` with every `../docs/<page>.md[#anchor]` link as `../../<page>/[#anchor]` and
    every `<tutorial>.ipynb[#anchor]` link as `../<tutorial>/[#anchor]`."""
    html = _DOCS_LINK.sub(lambda m: f'href="../../{m.group(1)}/{m.group(2) or ""}"', html)
    return _NOTEBOOK_LINK.sub(lambda m: f'href="../{m.group(1)}/{m.group(2) or ""}"', html)


def on_page_content(html, page, config, files):  # noqa: ARG001 - MkDocs hook signature
    if page.file.src_path.startswith("tutorials/") and page.file.src_path.endswith(".ipynb"):
        return rewrite_docs_links(html)
    return html
