"""The checkout's root, for tests that read shipped files."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
