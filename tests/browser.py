"""A real headless browser for tests: Debian's chromium, offline, with its network watched.

A page is opened once (`render`): the DOM the browser built, a screenshot,
and every URL the page asked the network for, read from chromium's own
network log (``--log-net-log``). Requests the browser makes for itself
(update checks, a spelling dictionary) carry no initiating origin and are
not the page's; everything else is. The browser runs behind a proxy that
refuses every connection and with no name resolving, so nothing it tries
leaves the machine either way.

`browser()` finds it; where none is installed the test is skipped, except
under CI, where it fails naming the package (``make test`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")
MISSING = (
    "no headless browser on PATH (looked for chromium, chromium-browser, google-chrome): "
    "install Debian's chromium package (as root: apt-get install -y chromium)"
)


def browser() -> str:
    """The browser's path; without one, a skip, or under CI a failure saying what to install."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(MISSING)
    pytest.skip(MISSING)


@dataclass
class Rendered:
    """What the browser made of a page."""

    dom: str
    screenshot: bytes
    requests: list[str]  # URLs the page asked for


def render(page: Path, folder: Path, size: tuple[int, int] = (1400, 1000)) -> Rendered:
    """Open ``page`` in headless chromium: its DOM, a screenshot of ``size``, its requests."""
    folder.mkdir(parents=True, exist_ok=True)
    shot, net = folder / "screenshot.png", folder / "net.json"
    command = [
        browser(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--hide-scrollbars",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={folder / 'profile'}",
        f"--log-net-log={net}",
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={shot}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    home = {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder), "XDG_CACHE_HOME": str(folder)}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **home},
    )
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}: {done.stderr[-2000:]}"
    return Rendered(done.stdout, shot.read_bytes(), page_requests(net))


def page_requests(net_log: Path) -> list[str]:
    """URLs requested on behalf of a page, from a chromium network log."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        # the browser's own requests (update checks, dictionaries) come from no origin
        if (
            event["type"] == start
            and "url" in params
            and params.get("initiator") != "not an origin"
        ):
            urls.append(params["url"])
    return urls


def pixels(png: bytes) -> npt.NDArray[np.uint8]:
    """An 8-bit RGB or RGBA PNG (what chromium writes) as rows of RGB pixels."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, chunks = 8, []
    width = height = kind = 0
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        name, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if name == b"IHDR":
            width, height, depth, kind, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and kind in (2, 6) and not interlace, "an unexpected PNG layout"
        elif name == b"IDAT":
            chunks.append(body)
        at += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    step = 3 if kind == 2 else 4
    stride = width * step
    rows = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        offset = y * (stride + 1)
        kind_of_row = raw[offset]
        line = np.frombuffer(raw, np.uint8, stride, offset + 1)
        if kind_of_row == 0:
            row = line.copy()
        elif kind_of_row == 1:  # each byte adds the one a pixel to its left: a running sum
            sums = np.cumsum(line.reshape(width, step), axis=0, dtype=np.int64) % 256
            row = sums.astype(np.uint8).reshape(-1)
        elif kind_of_row == 2:
            row = line + prior
        else:
            row = np.frombuffer(
                _unfilter(kind_of_row, line.tobytes(), prior.tobytes(), step), np.uint8
            )
        rows[y] = row
        prior = row
    return rows.reshape(height, width, step)[:, :, :3]


def _unfilter(kind: int, line: bytes, prior: bytes, step: int) -> bytes:
    """Average (3) and Paeth (4) rows, which depend on the byte just decoded: byte by byte."""
    out = bytearray(len(line))
    for i, value in enumerate(line):
        left = out[i - step] if i >= step else 0
        up = prior[i]
        if kind == 3:
            out[i] = (value + ((left + up) >> 1)) & 255
            continue
        corner = prior[i - step] if i >= step else 0
        far_up, far_left, far_both = (
            abs(up - corner),
            abs(left - corner),
            abs(left + up - 2 * corner),
        )
        guess = (
            left
            if far_up <= far_left and far_up <= far_both
            else up
            if far_left <= far_both
            else corner
        )
        out[i] = (value + guess) & 255
    return bytes(out)


def count_colour(image: npt.NDArray[np.uint8], colour: str, tolerance: int = 24) -> int:
    """Pixels within ``tolerance`` of ``colour`` (``#rrggbb``) in every channel."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    near = np.abs(image.astype(np.int16) - target) <= tolerance
    return int(near.all(axis=2).sum())
