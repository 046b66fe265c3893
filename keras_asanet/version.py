"""The package version, kept in one place for pyproject and runtime."""

__version__ = "0.1.0"
