"""LEAP: recordings in, published videos out."""

__version__ = "0.1.0"
