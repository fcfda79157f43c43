"""Fixtures shared by the live-WebUI tests."""

from __future__ import annotations

import pytest

from .webui import WebUI, webui_url


@pytest.fixture(scope="module")
def webui():
    return WebUI(webui_url())


@pytest.fixture(scope="module")
def vae(webui):
    """The override_settings selecting the transparent VAE on this host."""
    name = webui.vae_name()
    if name is None:
        pytest.skip("the WebUI has no transparent VAE (shared/tools/make_transparent_vae.py) for pixel-exact checks")
    return webui.vae_settings(name)
