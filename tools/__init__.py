"""Build-time code generation for ``cpu_fallback`` (not part of the installed package)."""
