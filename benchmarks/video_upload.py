"""Benchmark: the web process's memory while a 1 GB video uploads (issue 21's target:
its RSS grows by <= 100 MB), through the app (local storage, ``make run``'s default) and,
with ``--direct``, straight to S3 (moto's server) as the page sends it: a multipart
upload, then the confirmation that joins the parts, reads the video back to a temporary
file, checks it and copies it (issue 22).

    make bench-video            # runs this after benchmarks.video, both ways
    .venv/bin/python -m benchmarks.video_upload [--megabytes 1000] [--direct]

The web server is the one ``make run`` starts (``manage.py runserver --noreload``), on a
scratch SQLite database and media folder, with tasks published to an in-memory broker (the
worker's analysis is not the web process's memory). The video is a real MP4 (3 s, H.264)
followed by a top-level ``free`` box that pads it to the size asked for: every byte goes
through the upload, the probe, the hash and the copy to storage, as a phone's long video
would. The multipart body is streamed from disk with its Content-Length; the server's
VmRSS (its whole process tree) is read every 20 ms from before the first byte until the
answer, against its RSS after a warm-up request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.samples import video

BASE = Path(__file__).resolve().parent.parent
USER, PASSWORD = "uploader", "a-long-pass-phrase-9"


def padded_video(path: Path, size: int) -> None:
    """A real MP4 padded with a ``free`` box (which demuxers skip) to ``size`` bytes."""
    head = video(seconds=3, size=(640, 360))
    padding = size - len(head) - 8
    with open(path, "wb") as out:
        out.write(head)
        out.write(struct.pack(">I", padding + 8) + b"free")
        block = bytes(8 * 1024 * 1024)
        while padding > 0:
            out.write(block[:min(padding, len(block))])
            padding -= min(padding, len(block))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from each process's parent in /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def tree_rss_mb(pid: int) -> float:
    """VmRSS of a process and every process under it, in MB (runserver serves requests in
    threads, which VmRSS counts; anything a request spawned would be counted too)."""
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


class Session:
    def __init__(self, port: int):
        self.port, self.cookies = port, SimpleCookie()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def headers(self) -> dict:
        cookie = "; ".join(f"{k}={v.value}" for k, v in self.cookies.items())
        return {"Cookie": cookie, "Referer": f"http://127.0.0.1:{self.port}/"} if cookie else {}

    def keep(self, response) -> bytes:
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        return response.read()

    def get(self, path: str) -> str:
        conn = self.connection()
        conn.request("GET", path, headers=self.headers())
        return self.keep(conn.getresponse()).decode()

    def post_form(self, path: str, fields: dict) -> int:
        conn = self.connection()
        conn.request("POST", path, body=urlencode(fields), headers={
            **self.headers(), "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        self.keep(response)
        return response.status

    def csrf(self) -> str:
        return self.cookies["csrftoken"].value

    def post_json(self, path: str, body: dict) -> tuple[int, dict]:
        conn = self.connection()
        conn.request("POST", path, body=json.dumps(body), headers={
            **self.headers(), "Content-Type": "application/json", "X-CSRFToken": self.csrf()})
        response = conn.getresponse()
        return response.status, json.loads(self.keep(response) or b"{}")

    def upload_direct(self, file: Path, name: str) -> tuple[int, dict]:
        """What upload.js does with a video on S3 storage: start, PUT every part (streamed
        from disk) to its presigned URL, confirm. The confirmation's status and answer."""
        size = file.stat().st_size
        status, start = self.post_json("/photos/direct/", {"filename": name, "content_type": "video/mp4", "size": size})
        assert status == 200 and "multipart" in start, start
        each, count = start["multipart"]["part_size"], start["multipart"]["parts"]
        with open(file, "rb") as handle:
            for first in range(1, count + 1, 100):
                numbers = list(range(first, min(count, first + 99) + 1))
                urls = self.post_json("/photos/direct/parts/", {"token": start["token"], "parts": numbers})[1]["urls"]
                for n in numbers:
                    url = urlsplit(urls[str(n)])
                    length = min(each, size - (n - 1) * each)
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
                    conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
                    conn.putheader("Content-Length", str(length))
                    conn.endheaders()
                    handle.seek((n - 1) * each)
                    left = length
                    while left and (block := handle.read(min(left, 1024 * 1024))):
                        conn.send(block)
                        left -= len(block)
                    answer = conn.getresponse()
                    answer.read()
                    assert answer.status == 200, f"part {n}: {answer.status}"
        self.parts = count
        return self.post_json("/photos/direct/confirm/", {"token": start["token"]})

    def upload(self, path: str, file: Path, name: str) -> tuple[int, str]:
        """A multipart POST streamed from disk: nothing of the file is held here either."""
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{self.csrf()}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"{name}\"\r\n"
                "Content-Type: video/mp4\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = self.connection()
        conn.putrequest("POST", path)
        for key, value in {**self.headers(), "Content-Type": f"multipart/form-data; boundary={boundary}",
                           "Content-Length": str(len(head) + file.stat().st_size + len(tail))}.items():
            conn.putheader(key, value)
        conn.endheaders()
        conn.send(head)
        with open(file, "rb") as handle:
            while block := handle.read(1024 * 1024):
                conn.send(block)
        conn.send(tail)
        response = conn.getresponse()
        self.keep(response)
        return response.status, response.headers.get("Location", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_s3(scratch: str) -> tuple[subprocess.Popen, dict]:
    """moto's S3 server (its own process: its memory is not the web process's) with a
    versioned bucket, and the environment that points the app at it."""
    import boto3

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "PHOTOS_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "bench-media",
           "AWS_ENDPOINT_URL": endpoint, "AWS_S3_ADDRESSING_STYLE": "path"}
    wait_for(port)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    s3.create_bucket(Bucket="bench-media")
    s3.put_bucket_versioning(Bucket="bench-media", VersioningConfiguration={"Status": "Enabled"})
    return server, env


def wait_for(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1000)
    parser.add_argument("--direct", action="store_true", help="straight to S3 (moto) as a multipart upload")
    args = parser.parse_args()
    moto = None
    with tempfile.TemporaryDirectory(prefix="mediaapp-bench-upload-") as scratch:
        # make run's defaults, pinned whatever the caller's environment says: local media,
        # a real (here in-memory) broker so no analysis runs in the web process.
        env = {**os.environ, "MEDIAAPP_VAR_DIR": scratch, "DATABASE_URL": f"sqlite:///{scratch}/db.sqlite3",
               "MEDIA_ROOT": f"{scratch}/media", "AWS_STORAGE_BUCKET_NAME": "", "PHOTOS_PIPELINE": "local",
               "CELERY_BROKER_URL": "memory://", "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_DEBUG": "1"}
        if args.direct:
            moto, s3_env = moto_s3(scratch)
            env.update(s3_env)
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=BASE, check=True)
        subprocess.run([*manage, "shell", "-c", "from django.contrib.auth import get_user_model; "
                        f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})"],
                       env=env, cwd=BASE, check=True)
        clip = Path(scratch) / "long.mp4"
        padded_video(clip, args.megabytes * 1000 * 1000)
        port = free_port()
        server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env, cwd=BASE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            session = Session(port)
            session.get("/accounts/login/")
            assert session.post_form("/accounts/login/", {"username": USER, "password": PASSWORD,
                                                          "csrfmiddlewaretoken": session.csrf()}) == 302, "login failed"
            session.get("/photos/")  # warm: the upload view's imports and the first queries
            if args.direct:  # and the S3 client (botocore's S3 model), by a photo's presigned POST
                session.post_json("/photos/direct/", {"filename": "warm.jpg", "content_type": "image/jpeg", "size": 1})
            baseline = tree_rss_mb(server.pid)
            peak = [baseline]
            done = threading.Event()

            def watch():
                while not done.is_set():
                    peak[0] = max(peak[0], tree_rss_mb(server.pid))
                    done.wait(0.02)
            watcher = threading.Thread(target=watch)
            watcher.start()
            started = time.perf_counter()
            if args.direct:
                status, answer = session.upload_direct(clip, "long.mp4")
                accepted = answer.get("accepted") or [{}]
                ok = status == 201 and accepted[0].get("kind") == "video"
                message = None if ok else re.search(r"(.*)", json.dumps(answer))
            else:
                status, location = session.upload("/photos/", clip, "long.mp4")
            seconds = time.perf_counter() - started
            done.set()
            watcher.join()
            if not args.direct:
                page = session.get(location or "/photos/")
                stored = list((Path(scratch) / "media" / "uploads").rglob("*.mp4"))
                ok = status == 302 and stored and stored[0].stat().st_size == clip.stat().st_size
                message = re.search(r'class="messages?[^"]*"[^>]*>(.*?)</', page, re.S)
        finally:
            server.terminate()
            server.wait(10)
            if moto is not None:
                moto.terminate()
                moto.wait(10)
    how = (f"straight to S3 (moto), {session.parts} parts, then the confirmation" if args.direct
           else "through the web process (runserver, as make run serves)")
    print(f"{args.megabytes} MB video upload {how}:")
    print(f"  stored whole: {'yes' if ok else 'NO'} ({status}); {seconds:.1f} s; "
          f"{args.megabytes / seconds:.0f} MB/s{'' if ok or not message else ' — ' + message.group(1).strip()}")
    print(f"  web RSS {baseline:.0f} MB before, peak {peak[0]:.0f} MB during: "
          f"grew {peak[0] - baseline:.0f} MB (target <= 100)")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
