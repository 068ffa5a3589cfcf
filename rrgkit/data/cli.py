"""``rrgkit data``: build the embedded datasets or curate real ones into the common manifest."""

from __future__ import annotations

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "build": ("rrgkit.data.build_cli", "materialise an embedded dataset (phantom, iu-phantom) under data/"),
    "curate": ("rrgkit.data.curate_cli", "curate MIMIC-CXR-JPG or IU X-ray into the common manifest"),
}
