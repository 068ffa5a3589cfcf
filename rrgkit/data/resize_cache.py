"""A one-off down-sized copy of a manifest's images: full-size MIMIC-CXR JPEGs (~2.5k px) are slow to decode
every epoch, and the paper's encoder only sees 480 px."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from tqdm import tqdm

from rrgkit.data.manifest import SEP, image_paths, read_manifest, write_manifest


def resize_manifest_images(manifest: str | Path, out: str | Path, size: int = 512) -> Path:
    """Write images whose longer side is at most ``size`` px under ``out/images`` and a manifest pointing at them.

    Existing cache files are reused, so an interrupted run continues where it stopped.
    """
    if size < 1:
        raise ValueError(f"resize size {size} px must be a positive number of pixels, e.g. 512")
    frame = read_manifest(manifest)
    out = Path(out)
    new_images = []
    for row in tqdm(range(len(frame)), desc=f"resizing to {size} px"):
        rel = []
        for src, name in zip(image_paths(frame, row), frame["images"].iloc[row].split(SEP)):
            dest = out / "images" / f"{frame['id'].iloc[row]}_{Path(name).stem}.png"
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with Image.open(src) as img:
                        img = img.convert("L")
                        img.thumbnail((size, size), Image.Resampling.LANCZOS)
                        img.save(dest.with_suffix(".tmp.png"))
                except (FileNotFoundError, OSError) as exc:
                    raise FileNotFoundError(f"{src}: cannot read image ({exc}); re-run `rrgkit data curate`") from exc
                dest.with_suffix(".tmp.png").replace(dest)
            rel.append(str(dest.relative_to(out)))
        new_images.append(SEP.join(rel))
    return write_manifest(frame.assign(images=new_images), out / "manifest.csv")
