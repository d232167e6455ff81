"""Nuggy's web app (Streamlit): ``nuggy ui`` runs ``streamlit run`` on :data:`APP_PATH`.

Needs the ``ui`` extra: ``pip install 'nuggy[ui]'``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP_PATH"]

#: The Streamlit script (``streamlit run`` takes a file path).
APP_PATH = Path(__file__).with_name("app.py")
