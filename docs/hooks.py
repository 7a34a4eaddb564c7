"""mkdocs hook: docstrings use Sphinx roles (:class:`x`, :func:`~a.b.c`); show them as plain code."""

import re

ROLE = re.compile(r":(?:class|func|mod|data|meth|attr|obj|exc):<code>(~?)([^<]*)</code>")


def _code(match):
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html, **kwargs):
    return ROLE.sub(_code, html)


def on_files(files, config, **kwargs):
    """Serve the figures benchmarks/RESULTS.md shows (benchmarks/results/*.png) next to results.md."""
    import glob
    import os

    from mkdocs.structure.files import File

    for path in sorted(glob.glob("benchmarks/results/*.png")):
        uri = os.path.relpath(path, "benchmarks")
        files.append(File(uri, src_dir="benchmarks", dest_dir=config["site_dir"], use_directory_urls=False))
    return files
