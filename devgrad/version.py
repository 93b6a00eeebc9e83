"""devgrad's version, and how to install one of its extras, in a module of its own so that any
layer can read them without importing the package façade (devgrad/__init__.py, which imports
every layer)."""

__version__ = "0.1.0"


def extra_hint(extra: str, packages: str) -> str:
    """How to install devgrad's extra ``extra`` (which brings ``packages``), as docs/install.md
    says: the install command repeated with every extra in one list, since a later plain
    ``pip install '.[extra]'`` replaces an editable install with a copy; or the packages alone."""
    return (f"run your pip install again from the devgrad folder with {extra} added to its list of extras, "
            f"e.g. pip install -e '.[test,{extra}]' (or pip install {packages})")
