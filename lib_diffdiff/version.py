"""The extension's version, written here and nowhere else (semantic versioning: https://semver.org).

pyproject.toml reads it from this file, ``lib_diffdiff.__version__`` is this value, and
:func:`lib_diffdiff.webui.infotext.infotext_params` writes it into an enabled generation's infotext
(``Differential diffusion version``). CHANGELOG.md says what each version changed; a release bumps the number here
and adds its section there (see docs/release.md)."""

__version__ = "1.0.0"
