#!/usr/bin/env python3
"""Draws the extension and task icons (stacked layers and a check mark) as PNG files, with
nothing but the standard library, so they can be regenerated anywhere."""
import struct
import zlib


def png(path, size, pixel):
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x / size, y / size)) for x in range(size)) for y in range(size)
    )
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def icon(u, v):
    clear = (0, 0, 0, 0)
    # Rounded square background.
    r = 0.18
    cx, cy = min(max(u, r), 1 - r), min(max(v, r), 1 - r)
    if (u - cx) ** 2 + (v - cy) ** 2 > r * r:
        return clear
    white = (255, 255, 255, 255)
    # A check mark in the lower right.
    def near(ax, ay, bx, by, w):
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)))
        return (u - ax - t * dx) ** 2 + (v - ay - t * dy) ** 2 < w * w
    if near(0.50, 0.70, 0.62, 0.82, 0.05) or near(0.62, 0.82, 0.86, 0.52, 0.05):
        return white
    # Three stacked layers (a rhombus each) on the left.
    for offset in (0.22, 0.36, 0.50):
        du, dv = abs(u - 0.40), abs(v - offset)
        if du / 0.28 + dv / 0.09 < 1.0 and du / 0.28 + dv / 0.09 > 0.55:
            return white
    return (255, 54, 33, 255)


if __name__ == "__main__":
    png("images/extension-icon.png", 128, icon)
    for task in ("DatabricksRepoUpdate", "DatabricksRunNotebookTest"):
        png(f"task/{task}/icon.png", 64, icon)
