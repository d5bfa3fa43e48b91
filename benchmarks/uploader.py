"""Uploader throughput: `safepost upload`'s code path vs curl, same files, same server.

Starts the embedded system on a free port, enrols two trust devices (one per demo
teacher, so neither run finds the other's photos already held), writes N random
"photos" (a JPEG signature then random bytes; redaction refuses them at once, so it
adds no load) in a temp folder, then posts them in posts of 10:

- curl: one `curl -F photos=@...` process per post (``Expect:`` off), sequentially;
- uploader: ``safepost.uploader.upload`` (what the CLI runs: hashing, the held-check,
  streamed multipart, receipt checks), progress bar drawn to a null stream.

Prints MB/s for each and the ratio uploader/curl (target >= 0.8).

    python benchmarks/uploader.py [--count 100] [--mb 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from safepost import demo, embedded, uploader  # noqa: E402

PER_POST = 10


def sign_in(base: str, username: str, password: str) -> str:
    r = requests.post(
        f"{base}/auth/token", json={"username": username, "password": password}
    )
    r.raise_for_status()
    return str(r.json()["token"])


def enrol(base: str, it: str, teacher: str, username: str, school: str) -> str:
    def call(token: str, path: str, **kw: object) -> dict:
        r = requests.post(
            f"{base}/intake{path}",
            headers={"Authorization": f"Bearer {token}"},
            **kw,  # type: ignore[arg-type]
        )
        r.raise_for_status()
        return dict(r.json())

    device = call(
        it,
        "/api/devices",
        json={"school": school, "owner": username, "kind": "trust", "name": "bench"},
    )
    call(it, f"/api/devices/{device['device_id']}/approve")
    code = call(it, f"/api/devices/{device['device_id']}/enrolment-code")["code"]
    return str(call(teacher, "/api/enrol", json={"code": code})["token"])


def curl_run(
    base: str, token: str, device: str, files: list[Path], school: str
) -> float:
    started = time.perf_counter()
    for i in range(0, len(files), PER_POST):
        cmd = [
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", f"Authorization: Bearer {token}",
            "-H", f"X-Device-Token: {device}",
            "-H", "Expect:",
            "-F", f"school={school}", "-F", "caption=bench",
            "-F", f"accounts={demo.folder_account(school)}",
        ]  # fmt: skip
        for f in files[i : i + PER_POST]:
            cmd += ["-F", f"photos=@{f};type=image/jpeg"]
        cmd.append(f"{base}/intake/api/posts")
        code = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        if code != "201":
            raise SystemExit(f"curl got HTTP {code}")
    return time.perf_counter() - started


def uploader_run(base: str, token: str, device: str, files: list[Path]) -> float:
    server = uploader.Server(base, staff_token=token, device_token=device)
    config = uploader.DeviceConfig(server=base, device_id="", device_token=device)
    started = time.perf_counter()
    outcome = uploader.upload(
        server, config, files, caption="bench", school=None,
        accounts=[demo.folder_account("oakfield")], out=io.StringIO(),
    )  # fmt: skip
    took = time.perf_counter() - started
    server.close()
    if len(outcome.uploaded) != len(files) or outcome.problems:
        raise SystemExit(f"uploader: {outcome.problems or 'not everything uploaded'}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--mb", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="safepost-bench-") as tmp:
        root = Path(tmp)
        system = embedded.build(root / "var")
        created = {u.username: u.password for u in demo.seed(system.ports, root / "p")}
        system.start_workers()
        server = make_server("127.0.0.1", 0, system.wsgi, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            it = sign_in(base, "trust-it", created["trust-it"])
            oak = sign_in(base, "teacher.oakfield", created["teacher.oakfield"])
            river = sign_in(base, "teacher.riverside", created["teacher.riverside"])
            oak_device = enrol(base, it, oak, "teacher.oakfield", "oakfield")
            river_device = enrol(base, it, river, "teacher.riverside", "riverside")
            size = int(args.mb * 1024 * 1024)
            photos = root / "photos"
            photos.mkdir()
            files = []
            for i in range(args.count):
                path = photos / f"IMG_{i:04}.jpg"
                path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size - 4))
                files.append(path)
            total_mb = size * len(files) / 1e6
            # warm-up: one small post each way
            curl_run(base, river, river_device, files[:1], "riverside")
            curl_s = curl_run(base, river, river_device, files, "riverside")
            up_s = uploader_run(base, oak, oak_device, files)
        finally:
            server.shutdown()
            system.shutdown()
    print(f"{args.count} x {args.mb:g} MB = {total_mb:.0f} MB in posts of {PER_POST}")
    print(f"curl      {curl_s:7.2f} s  {total_mb / curl_s:7.1f} MB/s")
    print(f"uploader  {up_s:7.2f} s  {total_mb / up_s:7.1f} MB/s")
    print(f"ratio uploader/curl (throughput): {curl_s / up_s:.2f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
