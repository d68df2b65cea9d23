"""amphub: a self-hosted model hub in one process."""

__version__ = "0.1.0"
