"""devgrad's version, in a module of its own so that any layer can read it without importing
the package façade (devgrad/__init__.py, which imports every layer)."""

__version__ = "0.1.0"
