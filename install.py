"""Run by the WebUI at start-up (and skipped with --skip-install). Differential Diffusion needs nothing the WebUI
does not already ship (torch, numpy, pillow, gradio), so it installs nothing; it only reports a broken environment,
and never raises: an exception here would stop the WebUI from starting."""

import importlib.util

try:
    missing = [name for name in ("torch", "numpy", "PIL", "gradio") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"[Differential Diffusion] the WebUI environment lacks {', '.join(missing)}; the extension will not load")
except Exception as e:  # noqa: BLE001 - must never break start-up
    print(f"[Differential Diffusion] install check failed: {e}")
