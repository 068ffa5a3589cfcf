"""ManifestDataset: frontal and stitched images, labels with NaN, augmentation, caching and clear errors."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rrgkit.data.loader import ImageLoadError, ManifestDataset, collate_reports
from rrgkit.data.manifest import read_manifest, write_manifest
from rrgkit.labels import CHEXPERT_OBSERVATIONS


def _png(path, value: int, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full(size[::-1], value, dtype=np.uint8)
    pixels[: size[1] // 2] = 255 - value  # a top/bottom edge so affine changes show
    Image.fromarray(pixels).save(path)


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for i, (split, views) in enumerate([("train", "LATERAL|PA"), ("train", "AP"), ("val", "PA|LATERAL"), ("test", "PA")]):
        names = [f"images/s{i}_{k}.png" for k in range(len(views.split("|")))]
        for k, (name, view) in enumerate(zip(names, views.split("|"))):
            _png(tmp_path / name, 200 if view == "LATERAL" else 40 + i)
        labels = {o: np.nan for o in CHEXPERT_OBSERVATIONS}
        labels.update({"Edema": 1.0, "Pneumothorax": 0.0, "Atelectasis": -1.0} if i == 0 else {"No Finding": 1.0})
        rows.append({"id": f"s{i}", "images": "|".join(names), "views": views, "findings": f"findings {i}.",
                     "impression": f"impression {i}.", "comparison": "", **labels, "split": split, "source": "phantom"})
    return write_manifest(pd.DataFrame(rows), tmp_path / "manifest.csv")


def test_frontal_item(manifest):
    data = ManifestDataset(manifest, "train", image_size=16)
    item = data[0]
    assert len(data) == 2 and item["id"] == "s0" and item["findings"] == "findings 0."
    assert item["image"].shape == (1, 16, 16) and item["image"].dtype == torch.float32
    assert abs(item["image"].mean().item() - (40 + 215) / 2 / 255) < 0.05  # the PA image, not the lateral listed first
    labels = item["labels"]
    assert labels.shape == (14,) and torch.isnan(labels[0])
    assert labels[CHEXPERT_OBSERVATIONS.index("Edema")] == 1 and labels[CHEXPERT_OBSERVATIONS.index("Atelectasis")] == -1


def test_stitch_puts_lateral_right_and_black_when_missing(manifest):
    val = ManifestDataset(manifest, "val", image_size=16, views="stitch")[0]["image"]
    assert val.shape == (1, 16, 32)
    assert val[..., 16:].mean() > val[..., :16].mean()  # lateral (200 / 55) on the right
    test = ManifestDataset(manifest, "test", image_size=16, views="stitch")[0]["image"]
    assert test.shape == (1, 16, 32) and test[..., 16:].abs().sum() == 0


def test_collate_and_dataloader(manifest):
    batch = next(iter(DataLoader(ManifestDataset(manifest, "train", 16), batch_size=2, collate_fn=collate_reports)))
    assert batch["image"].shape == (2, 1, 16, 16) and batch["labels"].shape == (2, 14)
    assert batch["id"] == ["s0", "s1"] and batch["impression"] == ["impression 0.", "impression 1."]
    with pytest.raises(ValueError, match="empty batch"):
        collate_reports([])


def test_augment_is_seeded_and_train_only(manifest):
    data = ManifestDataset(manifest, "train", 32, augment=True)
    plain = ManifestDataset(manifest, "train", 32)[0]["image"]
    torch.manual_seed(0)
    a = data[0]["image"]
    torch.manual_seed(0)
    b = data[0]["image"]
    assert torch.equal(a, b) and not torch.equal(a, plain) and 0 <= a.min() and a.max() <= 1
    val = ManifestDataset(manifest, "val", 32, augment=True)
    assert torch.equal(val[0]["image"], ManifestDataset(manifest, "val", 32)[0]["image"])


def test_cache_keeps_uint8_pixels(manifest):
    data = ManifestDataset(manifest, "train", 16)
    data[1]
    assert data._cached[1].dtype == np.uint8
    uncached = ManifestDataset(manifest, "train", 16, cache=False)
    uncached[1]
    assert not uncached._cached


def test_missing_and_corrupt_images_name_the_file_and_the_fix(manifest):
    (manifest.parent / "images" / "s1_0.png").unlink()
    with pytest.raises(ImageLoadError, match=r"s1_0\.png.*rrgkit data build phantom"):
        ManifestDataset(manifest, "train", 16)[1]
    (manifest.parent / "images" / "s3_0.png").write_bytes(b"not a png")
    with pytest.raises(FileNotFoundError, match=r"s3_0\.png.*unreadable"):
        ManifestDataset(manifest, "test", 16)[0]


def test_dataframe_input_and_bad_arguments(manifest):
    frame = read_manifest(manifest)
    frame.attrs.clear()
    with pytest.raises(ValueError, match="root="):
        ManifestDataset(frame, "train", 16)
    assert len(ManifestDataset(frame, "train", 16, root=manifest.parent)) == 2
    for kwargs, message in [({"split": "dev"}, "split"), ({"views": "both"}, "views"), ({"image_size": 2}, "too small")]:
        with pytest.raises(ValueError, match=message):
            ManifestDataset(manifest, **{"split": "train", "image_size": 16, **kwargs})
    only_train = frame.assign(split="train")
    with pytest.raises(ValueError, match="no studies in split 'val'"):
        ManifestDataset(only_train, "val", 16, root=manifest.parent)
