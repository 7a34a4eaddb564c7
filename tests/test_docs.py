"""The documentation stays true to the code: every CLI flag, public module and strategy
hyperparameter is documented, and the code cites the docs (the written contract)."""

import argparse
import pathlib
import re

import pytest

import neuroevo as ne
from neuroevo import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def sections(path):
    """``{heading: text}`` of a markdown page's ``## `` sections."""
    parts = re.split(r"^## (.+)$", path.read_text(), flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def commands(parser, prefix="neuroevo"):
    """``(command line, parser)`` of every leaf subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from commands(sub, f"{prefix} {name}")


def test_every_cli_flag_is_documented_in_its_commands_section():
    page = sections(DOCS / "cli.md")
    found = list(commands(cli.build_parser()))
    assert {name for name, _ in found} == {
        "neuroevo train",
        "neuroevo eval",
        "neuroevo sweep",
        "neuroevo strategies",
        "neuroevo bench bbob",
        "neuroevo bench plot",
        "neuroevo bench moo",
        "neuroevo nas",
    }
    for name, parser in found:
        assert name in page, f"docs/cli.md has no '## {name}' section"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            words = action.option_strings or [action.metavar or action.dest]
            for word in words:
                assert f"`{word}" in page[name], f"{name} {word} is not documented in docs/cli.md"


def public_modules():
    for path in sorted((ROOT / "neuroevo").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts):
            yield ".".join(parts)


def test_every_public_module_has_an_api_page_line():
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)$", page.read_text(), flags=re.M))
    missing = [m for m in public_modules() if m not in documented]
    assert not missing, f"add '::: <module>' lines to the docs/api page of their layer: {missing}"
    stale = sorted(documented - set(public_modules()))
    assert not stale, f"docs/api documents modules that do not exist: {stale}"


def test_every_strategy_and_hyperparameter_is_documented():
    pages = {p.name: p.read_text() for p in (DOCS / "strategies").glob("*.md")}
    everything = "\n".join(pages.values())
    for name in ne.strategies.names():
        if name.startswith("evosax:"):
            assert name.split(":", 1)[1] in pages["evosax.md"], name
            continue
        assert f"`{name}`" in pages["index.md"], f"{name} is missing from docs/strategies/index.md"
        for hp in ne.strategies.hyperparameters(name):
            assert f"`{hp}`" in everything, f"{name}'s hyperparameter {hp} is not documented"


@pytest.mark.parametrize("folder", ["neuroevo", "tests", "benchmarks", "docs"])
def test_the_docs_are_the_contract_the_code_cites(folder):
    texts = [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".toml", ".yml")]
    cites = [p for p in texts if p != pathlib.Path(__file__) and "DESIGN.md" in p.read_text()]
    assert not cites, f"cite the docs/ page instead of DESIGN.md: {cites}"


def test_every_page_is_in_the_nav_and_the_readme_quickstart_is_two_commands():
    nav = (ROOT / "mkdocs.yml").read_text()
    nav = "\n".join(line for line in nav.splitlines() if not line.lstrip().startswith("#"))
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"
    readme = (ROOT / "README.md").read_text()
    quickstart = re.search(r"## Quickstart\s+```bash\n(.*?)```", readme, flags=re.S).group(1)
    assert [line.split("#")[0].strip() for line in quickstart.strip().splitlines()] == [
        "./scripts/train",
        "./scripts/test",
    ]
    assert "docs/index.md" in readme
