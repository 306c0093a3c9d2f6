"""drillbook's version, in a module that imports nothing.

The journal and the CLI record it; taking it from the package's public façade instead would make
``drillbook`` (which names the engine for type checkers) and the journal import each other.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
