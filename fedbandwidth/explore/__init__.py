"""Exploring in JupyterLab: controls that answer with the exact forecast, and a button that measures it."""

from .explorer import Explorer

__all__ = ["Explorer"]
