"""Checked at import, before anything else: the ``cpu_fallback`` Python found is the real package."""

from __future__ import annotations


def check_cpu_fallback() -> None:
    """Refuse, with the folder to delete, a ``cpu_fallback`` that is only a namespace package: a
    ``site-packages/cpu_fallback/`` left holding files pip did not install (caches written there by
    an older gpu_hedge), which hides the real package of a later (e.g. editable) install."""
    import cpu_fallback

    if getattr(cpu_fallback, "__file__", None) is None:
        where = ", ".join(map(str, getattr(cpu_fallback, "__path__", []))) or "an unknown location"
        raise ImportError(
            f"gpu_hedge: 'cpu_fallback' resolved to a folder without its sources ({where}): files left behind by an earlier "
            "install. Delete that folder (or 'pip uninstall gpu_hedge', delete it, and reinstall) and import again."
        )


check_cpu_fallback()
