"""credentials-consumer: keeps Open edX Credentials in step with the Open edX event bus."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credentials-consumer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+source"
