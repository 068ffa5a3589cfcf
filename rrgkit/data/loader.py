"""A torch Dataset over any manifest (phantom, iu-phantom, IU X-ray, MIMIC-CXR): image, report text and labels.

``views="frontal"`` gives the study's first frontal (PA/AP) image as ``(1, H, W)``, the paper's
single-image setting. ``views="stitch"`` places the frontal and the first lateral side by side as
``(1, H, 2W)``, as the RRG24 entry stitches views; a study without a lateral gets a black right
half, so every item in a batch has the same shape and the model can tell "no lateral" apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from rrgkit.data.manifest import SEP, SPLITS, read_manifest, validate_manifest
from rrgkit.labels import CHEXPERT_OBSERVATIONS

VIEW_MODES = ("frontal", "stitch")
FRONTAL_VIEWS = ("PA", "AP")
LATERAL_VIEWS = ("LATERAL", "LL", "RL")
EMBEDDED_SOURCES = ("phantom", "iu-phantom")


class ImageLoadError(FileNotFoundError):
    """An image listed in a manifest is missing or cannot be decoded; the message names the file and the fix."""


def _fix_hint(source: str, root: Path) -> str:
    """How to remake a dataset's images: the exact command of an embedded build (from its build.json)."""
    from rrgkit.data.embedded import rebuild_command

    command = rebuild_command(root)
    if command is not None:
        return f"rebuild it with `{command}`"
    if source in EMBEDDED_SOURCES:
        return f"rebuild it with `rrgkit data build {source} --out {root} --force` and the options it was built with"
    return "re-run `rrgkit data curate` (and its --resize) for this dataset"


class ManifestDataset(Dataset):
    """Items ``dict(id, image, findings, impression, labels)`` of one split of a manifest.

    ``image`` is a float tensor in [0, 1]; ``labels`` a float tensor of the 14 CheXpert labels with
    NaN for blank. ``augment`` (a small random affine and brightness/contrast jitter, drawn from
    torch's global RNG so :func:`rrgkit.seed.seed_everything` fixes it) applies to the train split
    only. ``cache`` keeps the decoded, resized uint8 images in memory after first use.
    ``root`` is the folder image paths are relative to (default: the manifest's folder).
    """

    def __init__(self, manifest: str | Path | pd.DataFrame, split: str, image_size: int, views: str = "frontal",
                 augment: bool = False, cache: bool = True, root: Path | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        if views not in VIEW_MODES:
            raise ValueError(f"views={views!r} is not one of {VIEW_MODES}")
        if image_size < 8:
            raise ValueError(f"image_size {image_size} px is too small; use at least 8")
        if isinstance(manifest, pd.DataFrame):
            frame = validate_manifest(manifest)
            where = root or manifest.attrs.get("root")
            if where is None:
                raise ValueError("a manifest DataFrame without attrs['root'] needs root= (the folder its image paths are relative to)")
            self.name = "manifest DataFrame"
        else:
            frame = read_manifest(manifest)
            where = root or frame.attrs["root"]
            self.name = str(manifest)
        self.root = Path(where)
        self.frame = frame[frame["split"] == split].reset_index(drop=True)
        if self.frame.empty:
            raise ValueError(f"{self.name}: no studies in split {split!r}; build a larger dataset or pick another split")
        self.split, self.image_size, self.views, self.cache = split, image_size, views, cache
        self.labels = torch.tensor(self.frame[list(CHEXPERT_OBSERVATIONS)].to_numpy(dtype=np.float32))
        self._cached: dict[int, np.ndarray] = {}
        self.transform = self._augmentation() if augment and split == "train" else None

    @staticmethod
    def _augmentation():
        from torchvision.transforms import v2

        return v2.Compose([v2.RandomAffine(degrees=5, translate=(0.03, 0.03), scale=(0.95, 1.05)),
                           v2.ColorJitter(brightness=0.15, contrast=0.15)])

    def __len__(self) -> int:
        return len(self.frame)

    def _read(self, index: int, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                img = img.convert("L").resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
                return np.asarray(img, dtype=np.uint8)
        except (OSError, ValueError) as exc:  # missing file, truncated or not an image
            hint = _fix_hint(self.frame["source"].iloc[index], self.root)
            raise ImageLoadError(f"{path}: missing or unreadable image of study {self.frame['id'].iloc[index]!r} "
                                 f"({type(exc).__name__}: {exc}); {hint}") from exc

    def image_files(self, index: int) -> list[Path]:
        """The files item ``index`` reads: its first frontal image, then (``views="stitch"``) its first lateral if any."""
        row = self.frame.iloc[index]
        pairs = list(zip(row["images"].split(SEP), [v.strip().upper() for v in row["views"].split(SEP)]))
        frontal = next((p for p, v in pairs if v in FRONTAL_VIEWS), None)
        if frontal is None:
            raise ValueError(f"{self.name}: study {row['id']!r} has no frontal (PA/AP) image; curate the manifest first")
        lateral = next((p for p, v in pairs if v in LATERAL_VIEWS), None) if self.views == "stitch" else None
        return [self.root / p for p in (frontal, lateral) if p is not None]

    def _pixels(self, index: int) -> np.ndarray:
        files = self.image_files(index)
        pixels = self._read(index, files[0])
        if self.views == "stitch":
            right = self._read(index, files[1]) if len(files) > 1 else np.zeros_like(pixels)
            pixels = np.concatenate([pixels, right], axis=1)
        return pixels

    def __getitem__(self, index: int) -> dict:
        pixels = self._cached.get(index)
        if pixels is None:
            pixels = self._pixels(index)
            if self.cache:
                self._cached[index] = pixels
        image = torch.from_numpy(pixels.astype(np.float32) / 255.0).unsqueeze(0)
        if self.transform is not None:
            image = self.transform(image).clamp(0.0, 1.0)
        row = self.frame.iloc[index]
        return {"id": row["id"], "image": image, "findings": row["findings"], "impression": row["impression"],
                "labels": self.labels[index]}


def check_images(datasets: Iterable[ManifestDataset]) -> None:
    """Open every image the datasets will read, once, before training; raise one error listing ALL bad files.

    Otherwise a corrupt image stops a run when its batch comes up, one file per attempt. ``verify()`` checks a
    file's structure (a PNG's chunk checksums) without decoding its pixels, so the check costs a fraction of
    an epoch even on full-size MIMIC-CXR JPEGs; damage only decoding finds still stops the loader with the
    file's name.
    """
    bad: list[tuple[ManifestDataset, int, Path]] = []
    seen: set[Path] = set()
    for dataset in datasets:
        for index in range(len(dataset)):
            for path in dataset.image_files(index):
                if path in seen:
                    continue
                seen.add(path)
                try:
                    with Image.open(path) as img:
                        img.verify()
                except (OSError, ValueError, SyntaxError):  # missing, not an image, truncated (PIL: SyntaxError too)
                    bad.append((dataset, index, path))
    if bad:
        dataset, index, _ = bad[0]
        names = ", ".join(os.path.relpath(path, dataset.root) for _, _, path in bad)
        hint = _fix_hint(dataset.frame["source"].iloc[index], dataset.root)
        raise ImageLoadError(f"{dataset.name}: {len(bad)} of {len(seen)} images are missing or unreadable "
                             f"({names}); {hint}")


def collate_reports(batch: list[dict]) -> dict:
    """Stack images ``(B, 1, H, W)`` and labels ``(B, 14)``; ids and texts stay lists."""
    if not batch:
        raise ValueError("collate_reports got an empty batch")
    return {"id": [item["id"] for item in batch], "image": torch.stack([item["image"] for item in batch]),
            "findings": [item["findings"] for item in batch], "impression": [item["impression"] for item in batch],
            "labels": torch.stack([item["labels"] for item in batch])}
