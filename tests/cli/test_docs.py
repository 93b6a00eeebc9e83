"""The documentation tells the truth: the reference pages are the code's own, every link
resolves, every Python example runs, and no text narrates how the project was developed.

``python tests/cli/test_docs.py`` writes docs/spec.md and docs/cli.md again from the code.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from devgrad.cli import build_parser
from devgrad.experiment import spec
from devgrad.experiment.schema import Field
from devgrad.experiment.specdoc import spec_markdown

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REGENERATE = "run `python tests/cli/test_docs.py` to write docs/spec.md and docs/cli.md again"

# -- the command-line reference, rendered from the parser -----------------------------------------


def _usage(parser: argparse.ArgumentParser) -> str:
    """One usage line, written here rather than by argparse, whose wrapping varies between versions."""
    words = [parser.prog]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            name = action.metavar or action.dest
            words.append(f"[{name}]" if action.nargs == "?" else name)
            continue
        word = max(action.option_strings, key=len)
        if action.nargs != 0:
            word += f" {action.metavar or action.dest.upper()}"
        words.append(word if action.required else f"[{word}]")
    return " ".join(words)


def _argument_row(action: argparse.Action) -> str | None:
    if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
        return None
    name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
    if action.option_strings and action.nargs != 0:
        name += f" `{action.metavar or action.dest.upper()}`"
    about = (action.help or "").replace("|", "\\|")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        about += f" (one of {', '.join(f'`{c}`' for c in action.choices)})"
    if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings and "default" not in about:
        about += f" (default: `{action.default}`)"
    return f"| {name} | {about} |"


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """docs/cli.md: every ``devgrad`` command with its usage, arguments and examples."""
    parser = parser or build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in subparsers._choices_actions}
    lines = ["# Command line", "",
             "<!-- Generated from devgrad/cli_parser.py's parser: run `python tests/cli/test_docs.py` after changing a "
             "command. -->", "",
             f"{parser.description} `devgrad COMMAND --help` prints the same as this page. A mistake in a spec, "
             "a path or a device prints one clear message and exits with status 2, without a traceback.", "",
             "| command | what it does |", "|---|---|"]
    lines += [f"| [`devgrad {name}`](#devgrad-{name}) | {helps[name]} |" for name in subparsers.choices]
    for name, sub in subparsers.choices.items():
        lines += ["", f"## devgrad {name}", "", f"{helps[name][0].upper()}{helps[name][1:]}.", ""]
        if sub.description:
            lines += [sub.description, ""]
        lines += ["```", _usage(sub), "```", ""]
        rows = [row for row in map(_argument_row, sub._actions) if row]
        if rows:
            lines += ["| argument | meaning |", "|---|---|", *rows]
        if sub.epilog:
            lines += ["", "```", sub.epilog.strip(), "```"]
    return "\n".join(lines) + "\n"


# -- the reference pages ---------------------------------------------------------------------------


def test_spec_reference_is_the_one_the_schema_gives():
    page = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert page == spec_markdown(), f"docs/spec.md differs from the schema: {REGENERATE}"


def test_cli_reference_is_the_one_the_parser_gives():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == cli_markdown(), f"docs/cli.md differs from devgrad/cli_parser.py's parser: {REGENERATE}"


def _fields(schema: dict, prefix: str = ""):
    for key, value in schema.items():
        if isinstance(value, dict):
            yield from _fields(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_every_spec_key_says_what_it_means():
    undocumented = [path for path, field in _fields(spec.SCHEMA) if isinstance(field, Field) and not field.doc]
    assert not undocumented, f"give these keys a doc= in devgrad/experiment/spec_keys.py: {undocumented}"


def test_spec_reference_lists_every_key_and_name():
    page = spec_markdown()
    missing = [path for path, _ in _fields(spec.SCHEMA) if f"| `{path}` |" not in page]
    names = [*spec.LOSSES[1:], *spec.optim.OPTIMIZERS, *spec.optim.SCHEDULES, *spec.SYNTHETIC]
    missing += [name for name in names if f"| `{name}` |" not in page]
    assert not missing, missing


def test_cli_reference_lists_every_command_and_option():
    page = cli_markdown()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        assert f"## devgrad {name}\n" in page
        for action in sub._actions:
            for option in action.option_strings:
                assert option in {"-h", "--help"} or f"`{option}`" in page, (name, option)


def test_architecture_page_places_every_module_of_the_package():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "devgrad"
    names = [f"{p.name}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__", "version")]
    names += [f"devgrad/{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()]
    missing = [name for name in names if not re.search(rf"[`/]{re.escape(name)}", page)]
    assert not missing, f"docs/architecture.md's table of layers does not say where these belong: {missing}"


# -- links -----------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text(encoding="utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not this repository's
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_every_table_row_has_its_header_s_cells():
    """A row with a stray | (GitHub splits cells at | even inside code) renders as a broken table."""
    bad = []
    for page in PAGES:
        width = None
        for line in _prose(page.read_text(encoding="utf-8")).splitlines():
            cells = len(re.findall(r"(?<!\\)\|", line)) if line.startswith("|") else None
            if cells is None:
                width = None
            elif width is None:
                width = cells
            elif cells != width:
                bad.append(f"{page.relative_to(ROOT)}: '{line[:60]}...' has {cells - 1} cells, its header {width - 1}")
    assert not bad, bad


def test_every_page_is_reachable_from_the_index():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not link {page.name}"
    assert "](docs/index.md)" in readme


def test_install_page_lists_every_extra():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = re.findall(r"^([\w-]+)\s*=", block, re.M)
    for page in (ROOT / "docs" / "install.md", ROOT / "README.md"):
        missing = [extra for extra in extras if f"`{extra}`" not in page.read_text(encoding="utf-8")]
        assert extras and not missing, f"{page.name}'s list of extras lacks {missing}"


def test_install_commands_install_from_the_clone():
    """devgrad is not on a package index: `pip install 'devgrad[x]'` fails where '.[x]' works."""
    # the pages, the messages and --help texts of the code (cli.md is generated from them), the example specs
    sources = [*PAGES, *sorted((ROOT / "devgrad").rglob("*.py")), *sorted((ROOT / "devgrad").rglob("*.yaml")),
               *sorted((ROOT / "experiments").glob("*.yaml"))]
    wrong = [f"{page.relative_to(ROOT)}: {line.strip()}" for page in sources
             for line in page.read_text(encoding="utf-8").splitlines() if re.search(r"pip install\s+'?devgrad\[", line)]
    assert not wrong, wrong


# -- examples --------------------------------------------------------------------------------------

# The pages whose Python blocks run as written, and what they must have computed. (An example that
# needs a run folder of the reader's, as in use-a-trained-model.md, is exercised by its own tests.)
EXPECTED = {
    "README.md": lambda ns: ns["w"].grad.shape == (2,) and ns["loss"].item() < 0.5
    and (ns["label"] == ns["proba"].argmax(axis=1)).all() and np.allclose(ns["onnx_proba"], ns["proba"], rtol=1e-5)
    and np.allclose(ns["logits"].detach().numpy(), ns["model"].outputs(ns["rows"]), rtol=1e-5, atol=1e-6),
    "library.md": lambda ns: ns["accuracy"] > 0.95,
    "gpu.md": lambda ns: ns["mean_loss"] < 0.5,  # the spirals are learned
    "pytorch.md": lambda ns: (round(ns["population"], 3), round(ns["unbiased"], 3)) == (1.479, 1.708)
    and ns["swapped"].numpy().tolist() == [[1.0, 3.0], [2.0, 5.0]] and str(ns["half"].dtype) == "float64"
    and ns["pred"].numpy().tolist() == [1, 1],
    "numpy.md": lambda ns: np.allclose(ns["d1"].numpy(), [1.0, 2 / 3**0.5, np.inf])
    and np.allclose(ns["d2"].numpy(), [0.0, 0.5 / 0.75**1.5, np.inf])
    and ns["x"].grad.numpy().tolist() == [[6.0, 3.0], [3.0, 6.0]] and ns["grid"].shape == (5,)
    and ns["point"].shape == (2,),
    "func.md": lambda ns: ns["hessian_b1"].shape == (4, 4) and abs(ns["second"].item() + 0.72686) < 1e-4,
}


@pytest.mark.parametrize("page", [pytest.param(p, marks=[pytest.mark.slow] if p.name in ("gpu.md", "README.md") else [])
                                  for p in PAGES if p.name in EXPECTED], ids=lambda p: p.name)
def test_python_examples_run(page, tmp_path, monkeypatch):
    """A page's Python blocks run in order, in one namespace, as a reader would paste them."""
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {"__name__": "__docs__"}
    for block in re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M):
        exec(compile(block, str(page), "exec"), namespace)
    assert EXPECTED[page.name](namespace)


# -- the text rule ---------------------------------------------------------------------------------

# Phrases that narrate development rather than describe the software. Each is specific enough not
# to match ordinary words: "issue" alone is a verb ("the host time to issue one step"). The words
# are put together from pieces, so that this file passes the rule it states.
_TICKET, _PERIOD, _REDO = "iss" + "ue", "sess" + "ion", "re" + "work"
_CHECKOUT = "(commit|work" + "tree of|check" + "out of)"
HISTORY = [
    re.compile(rf"\b{_TICKET}s?\s+#?\d+", re.I),
    re.compile(rf"\b(next|previous|earlier|later|last|this|gpu|development|work)\s+{_PERIOD}s?\b", re.I),
    re.compile(rf"\b{_PERIOD}s\s+(with|without)\b", re.I),
    re.compile(rf"\b{_CHECKOUT}\s+`?[0-9a-f]{{7,40}}\b", re.I),  # a commit hash as history
    re.compile(rf"\b{_REDO}(ed|s)?\b", re.I),
    re.compile(r"\b(this|that|an earlier|the earlier|an older|the older|the previous)\s+bu" + r"ild\b", re.I),
]
SCANNED = ["README.md", "docs", "devgrad", "tests", ".ci", "docker", "experiments", "pyproject.toml"]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".cu", ".sh", ""}


def _scanned_files():
    for name in SCANNED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.suffix in TEXT_SUFFIXES and "__pycache__" not in file.parts:
                yield file


def test_no_text_narrates_how_the_project_was_developed():
    found = []
    for file in _scanned_files():
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in HISTORY):
                found.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "describe the software, not its development:\n" + "\n".join(found)


@pytest.mark.parametrize("line", [f"see {_TICKET} 12", f"the next GPU {_PERIOD} measures it",
                                  f"a work{'tree'} of `4ff9ecd`", f"after the {_REDO} of the backend",
                                  f"targets of {_TICKET}s 12 and 13", "measured with that bu" + "ild"])
def test_the_text_rule_catches_history(line):
    assert any(pattern.search(line) for pattern in HISTORY)


@pytest.mark.parametrize("line", ["the host time to issue one step", f"@pytest.fixture(scope=\"{_PERIOD}\")",
                                  f"ort.Inference{_PERIOD.title()}(path)", f"compiled once per test {_PERIOD}",
                                  "sha256 0123456789abcdef", "PyTorch's CPU build is all they need"])
def test_the_text_rule_lets_ordinary_words_be(line):
    assert not any(pattern.search(line) for pattern in HISTORY)


def _write_references() -> None:
    (ROOT / "docs" / "spec.md").write_text(spec_markdown(), encoding="utf-8")
    (ROOT / "docs" / "cli.md").write_text(cli_markdown(), encoding="utf-8")
    print("wrote docs/spec.md and docs/cli.md", file=sys.stderr)


if __name__ == "__main__":
    _write_references()
