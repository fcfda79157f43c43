"""Random-weight weight files for two of ControlNet's preprocessors, for the depth and segmentation map-source tests
(tests/integration/test_estimators_live.py, tests/browser/test_sources_browser.py): ``depth_leres`` (``res101.pth``)
and ``seg_anime_face`` (``UNet.pth``, plus torchvision's ``mobilenet_v2-b0353104.pth`` that its UNet asks
torchvision for first). Built with the host's own model classes, random initialisation (seed 0), in the original
layout, so each host's preprocessor loads them strictly and runs without a download.

Why these two: they are the pair that imports on A1111 (sd-webui-controlnet), Forge and Forge Neo without packages
the test hosts lack (depth_midas and seg_ufade20k need timm, addict; depth_anything needs its own package; the
OneFormer ones fvcore). Run with Forge's (or Neo's) venv; the files serve every host:

    cd /work/hosts/forge && HF_HUB_OFFLINE=1 venv/bin/python /path/to/tests/tools/make_estimators.py \\
        --forge /work/hosts/forge --out /work/hosts/estimators

Then link them where each host looks (the message of a missing file names the folder too):
- Forge, Neo: ``models/ControlNetPreprocessor/leres/res101.pth``, ``.../anime_face_segment/UNet.pth``
- A1111: ``extensions/sd-webui-controlnet/annotator/downloads/leres/res101.pth``, ``.../anime_face_segment/UNet.pth``
- all: ``$TORCH_HOME/hub/checkpoints/mobilenet_v2-b0353104.pth`` (default ``~/.cache/torch/hub/checkpoints``; any
  torchvision mobilenet_v2 of that user then gets these random weights)
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

# Records torch >= 2.6 adds to its zip archives. A1111 1.10.1's modules/safe.py (check_zip_filenames) refuses any
# entry but data.pkl, data/N, version, byteorder and .data/serialization_id ("the file may be malicious"); without
# these two the archive has the layout torch 2.1-2.5 wrote, which every torch reads unchanged.
DROP = (".format_version", ".storage_alignment")


def save(obj: object, path: Path) -> None:
    import torch

    tmp = path.parent / ".build" / path.name  # torch names the archive's folder after the file's stem
    tmp.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, tmp)
    with zipfile.ZipFile(tmp) as zin, zipfile.ZipFile(str(path) + ".part", "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if info.filename.split("/", 1)[1] in DROP:
                continue
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), zin.read(info))
    os.replace(str(path) + ".part", path)
    tmp.unlink()
    tmp.parent.rmdir()
    print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forge", type=Path, required=True, help="a Forge or Forge Neo checkout (its code is used)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    forge = args.forge.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    sys.argv = ["webui.py", "--always-cpu", "--all-in-fp32"]
    sys.path[:0] = [str(forge), str(forge / "extensions-builtin" / "forge_legacy_preprocessors")]
    os.chdir(forge)
    import modules.paths  # noqa: F401 (puts Forge's packages on sys.path, as the WebUI does)
    import torch
    import torchvision

    torch.manual_seed(0)
    save(torchvision.models.mobilenet_v2(weights=None).state_dict(), args.out / "mobilenet_v2-b0353104.pth")

    original = torchvision.models.mobilenet_v2
    torchvision.models.mobilenet_v2 = lambda *a, **k: original(*a, **{**k, "weights": None})  # no hub cache read
    from annotator.anime_face_segment import UNet

    torch.manual_seed(0)
    unet = UNet()
    torchvision.models.mobilenet_v2 = original
    save(unet.state_dict(), args.out / "UNet.pth")  # as its training script saves it: fp32, plain keys

    from annotator.leres.leres.multi_depth_model_woauxi import RelDepthModel

    torch.manual_seed(0)
    state = RelDepthModel(backbone="resnext101").state_dict()
    # fp16 floats (the loader copies them into an fp32 module), "module." keys as a DataParallel save has them
    depth = OrderedDict(("module." + k, v.half() if v.is_floating_point() else v) for k, v in state.items())
    save({"depth_model": depth}, args.out / "res101.pth")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
