"""lib_diffdiff is usable alone: it imports nothing of a WebUI nor gradio."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"modules", "gradio", "ldm", "sgm", "backend", "k_diffusion"}


def test_no_source_file_imports_the_webui_or_gradio():
    for path in (ROOT / "lib_diffdiff").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_imports_with_webui_and_gradio_unimportable():
    code = f"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {FORBIDDEN!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import lib_diffdiff
for m in pkgutil.walk_packages(lib_diffdiff.__path__, 'lib_diffdiff.'):
    if not m.name.endswith('__main__'):
        importlib.import_module(m.name)
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
