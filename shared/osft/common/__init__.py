"""Common package shared by every osft stage image."""

__version__ = "0.1.0"
