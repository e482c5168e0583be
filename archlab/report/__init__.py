"""The end-to-end demo (``archlab demo``) and the writers of its report."""

from __future__ import annotations

from archlab.report._demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
