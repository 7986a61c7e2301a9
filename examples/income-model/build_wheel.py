"""Builds dist/income_model-<version>-py3-none-any.whl with the standard library only.

A pipeline builds the wheel with `python -m build --wheel` (or `pip wheel . --no-deps -w
dist`); this script makes the same pure-Python wheel where no build backend can be installed
(the offline demo and test suite). Usage: python3 build_wheel.py [--out DIR]
"""

import argparse
import base64
import hashlib
import pathlib
import re
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
NAME = "income_model"


def version():
    text = (HERE / "src" / NAME / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(out):
    release = version()
    dist_info = f"{NAME}-{release}.dist-info"
    files = {
        f"{NAME}/{path.name}": path.read_bytes()
        for path in sorted((HERE / "src" / NAME).glob("*.py"))
    }
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: income-model\nVersion: {release}\n".encode()
    )
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: build_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [record_line(name, data) for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{NAME}-{release}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            # Fixed timestamps: the same sources make the same wheel.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return wheel


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "dist")
    print(build(parser.parse_args().out))
