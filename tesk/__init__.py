"""TESK: a GA4GH Task Execution Service (TES v1.1.0)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tesk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
