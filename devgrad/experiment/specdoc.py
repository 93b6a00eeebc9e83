"""The spec reference as Markdown, written from the schema and the registries it reads.

``python tests/cli/test_docs.py`` writes docs/spec.md (and docs/cli.md) from it; a test fails when
that page differs from what this module renders, so the reference cannot drift from the code.
Every key's type, default and allowed values come from ``spec.SCHEMA``; its meaning from the
field's ``doc``; the names and options of losses, optimizers, schedules and data sources from
the registries the spec itself validates against.
"""

from __future__ import annotations

import inspect
import re
import sys

from devgrad import optim
from devgrad.data.synthetic import GENERATORS
from devgrad.experiment import spec_keys as spec
from devgrad.experiment.schema import REQUIRED, Field
from devgrad.nn import functional as F

_KIND_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list", dict: "mapping",
               type(None): "null"}

_HEADER = """\
# Spec reference

<!-- Generated from devgrad/experiment/spec_keys.py by `python tests/cli/test_docs.py`, which
writes docs/cli.md too; edit the schema's docs there, not this page. -->

A spec is a YAML mapping. Every key is optional except `data.source`; a key left out takes
the default below. Paths in `data` are relative to the spec file. `devgrad run SPEC
--print-config` prints a spec with every default filled in, and `devgrad validate SPEC`
reports every problem with its key path and line. `--set key.path=value` overrides any key
(the value is parsed as YAML, as in a spec file). Numbers may be written `1e-3`, `.5` or `5.`;
integers are decimal, as a person reads them (and YAML 1.2): `010` is 10, not octal 8, `0x10`
and `0b10` are hex and binary, and `1:30` is text, not base 60. A spec may also hold
a `sweep:` block, a grid or a hyperparameter search that `devgrad sweep` runs
([experiments.md](experiments.md#sweeps-a-grid-of-runs-in-parallel), [search.md](search.md));
`devgrad validate` checks such a spec as `devgrad sweep` does before it starts (every point of
the grid, or the search's settings, space and base spec), and `devgrad run` refuses it.
"""


def _value(value) -> str:
    """A default as a person writes it in YAML."""
    if value == "":
        return '""'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _summary(obj) -> str:
    """The first paragraph of ``obj``'s docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _field_row(path: str, field: Field) -> str:
    names = [_KIND_NAMES.get(k, k.__name__) for k in field.kinds if not (k is int and float in field.kinds)]
    kinds = " or ".join(dict.fromkeys(names))
    if field.nullable and type(None) not in field.kinds:
        kinds += " or null"
    default = "required" if field.default is REQUIRED else f"`{_value(field.default)}`"
    meaning = field.doc
    if field.choices is not None:
        meaning += f"{'; ' if meaning else ''}one of {', '.join(f'`{_value(c)}`' for c in field.choices)}"
    return f"| `{path}` | {kinds} | {default} | {_cell(meaning)} |"


def _rows(schema: dict, prefix: str = "") -> list[str]:
    rows = []
    for key, value in schema.items():
        if isinstance(value, dict):
            rows += _rows(value, f"{prefix}{key}.")
        else:
            rows.append(_field_row(f"{prefix}{key}", value))
    return rows


def _options_table(title: str, names: dict, options_of, aliases: dict, in_a_run: dict | None = None) -> list[str]:
    """A row per class: its docstring's summary (a sentence on how to call it from Python replaced by
    ``in_a_run``'s words for that name, where a run steps it its own way), and its options."""
    lines = [f"| {title} | what it does | options (default) |", "|---|---|---|"]
    for name, cls in names.items():
        options = ", ".join(f"`{opt}` ({_value(default) if default is not REQUIRED else 'required'})"
                            for opt, default in options_of(name).items())
        also = aliases.get(name, {})
        if also:
            options += "; also accepted: " + ", ".join(f"`{a}` for `{o}`" for a, o in also.items())
        summary = _summary(cls)
        if in_a_run and name in in_a_run:
            summary = re.sub(r" Call `step\(\)`[^.]*\.", "", summary) + " " + in_a_run[name]
        lines.append(f"| `{name}` | {_cell(summary)} | {options} |")
    return lines


def _data_sources() -> list[str]:
    lines = ["## Data sources (`data.source`)", "",
             "| source | what it is | keys it reads |", "|---|---|---|"]
    for name, make in GENERATORS.items():
        lines.append(f"| `{name}` | {_cell(_summary(make))} | `n_samples`, `noise`"
                     f"{', `n_classes`' if 'n_classes' in inspect.signature(make).parameters else ''}"
                     f"{', `n_features`' if 'n_features' in inspect.signature(make).parameters else ''} |")
    lines += ["| `csv` | a CSV file with a header row; the other columns are the features | `path`, `target` |",
              "| `npz` | a NumPy `.npz` file holding arrays `X` and `y` | `path` |",
              "| `idx` | MNIST-format image and label files (`.gz` accepted) | `images`, `labels` |"]
    for name in spec.SKLEARN:
        kind = "regression" if name in spec.SKLEARN_REGRESSION else "classification"
        lines.append(f"| `sklearn:{name}` | scikit-learn's bundled `{name}` data ({kind}; the `sklearn` extra) | — |")
    lines += ["", "Every source also reads `data.split` and the standardisation keys. A key set (to other than its "
                  "default) that the source does not read, such as `n_samples` for a CSV or `path` for a generator, "
                  "is an error naming it, as it would be ignored."]
    return lines


def _losses() -> list[str]:
    lines = ["## Losses (`loss`)", "",
             "`loss` is a name, or a mapping `{name: ..., label_smoothing: ..., pos_weight: ..., delta: ...}`. "
             "`auto` is `bce` for two classes, else `cross_entropy`, and `mse` for a regression.", "",
             "| name | task | what it is |", "|---|---|---|"]
    for name, fn in F.LOSSES.items():
        task = "regression" if name in F.REGRESSION_LOSSES else "classification"
        lines.append(f"| `{name}` | {task} | {_cell(_summary(fn))} |")
    lines += ["", "| option | default | used by |", "|---|---|---|"]
    for opt, default in spec.loss_options().items():
        users = ", ".join(f"`{name}`" for name in spec.LOSS_OPTION_USERS[opt])
        lines.append(f"| `loss.{opt}` | `{_value(default)}` | {users} |")
    lines += ["", "An option set (to other than its default) for a loss that does not use it is an error, as it "
                  "would be ignored; with `loss: auto` that is known once the data says two classes (`bce`) or "
                  "more (`cross_entropy`)."]
    return lines


def _skipped() -> str:
    """The optimizer keywords a spec does not take, and why."""
    why = {"maximize": "a run minimises its loss", "capturable": "the run sets it, for a captured step"}
    return " and ".join(f"`{name}` ({why[name]})" for name in spec.OPTIMIZER_SKIP if name in why)


def _schedule_options(name: str) -> dict:
    """A schedule's options in a spec, less a warm-up where it takes none."""
    options = spec.schedule_options(name)
    if name in spec.NO_WARMUP_SCHEDULES:
        del options["warmup_epochs"]
    return options


def spec_markdown() -> str:
    """docs/spec.md: every spec key with its type, default and meaning, then the vocabularies."""
    lines = [_HEADER, "## Keys", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    lines += _rows(spec.SCHEMA)
    lines += ["", *_data_sources(), "", *_losses(), "",
              "## Optimizers (`optimizer`)", "",
              "`optimizer` is a name or a mapping `{name: ..., option: value}`; the options are the optimizer "
              "class's keyword parameters with their defaults (PyTorch's), and the class checks their values. "
              f"A spec takes all of them but {_skipped()}.", "",
              *_options_table("name", optim.OPTIMIZERS, spec.optimizer_options, {}), "",
              "## Schedules (`schedule`)", "",
              "`schedule` is a name or a mapping `{name: ..., option: value}`, stepped once per epoch; `none` "
              "keeps the learning rate. Every schedule but "
              f"{' and '.join(f'`{n}`' for n in spec.NO_WARMUP_SCHEDULES)} takes `warmup_epochs` (a linear "
              "warm-up first); `plateau` sets the rate from the monitored metric from the first epoch on, and "
              "`onecycle`'s `pct_start` is its warm-up, so a spec refuses a warm-up for them. A `null` length "
              "means the run's length after the warm-up.", "",
              *_options_table("name", optim.SCHEDULES, _schedule_options, spec.SCHEDULE_ALIASES,
                             {"onecycle": "In a run it steps once per epoch; `total_steps` null: the run's epochs."}),
              ""]
    return "\n".join(lines)


def main() -> int:
    """Print the spec reference (docs/spec.md) on stdout."""
    sys.stdout.write(spec_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
