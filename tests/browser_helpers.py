"""Headless Chromium for the report tests: where it is, and a DevTools-protocol session over a
pipe (``--remote-debugging-pipe``: no port, no websocket library), which sees what ``--dump-dom``
cannot - console errors, uncaught exceptions and every request the page makes."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
SKIP_REASON = "headless Chromium not found (`chromium` on PATH or /usr/bin/chromium); .ci/run installs it with apt-get install chromium"
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Chromium reads commands on fd 3 and writes replies on fd 4: a launcher puts the pipes there.
LAUNCH = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to 10 and above, clear of 3 and 4, which the launcher overwrites."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved


class DevTools:
    """One Chromium, driven over the DevTools protocol: ``call`` a method, read ``events``."""

    def __init__(self, user_data_dir: Path, timeout: float = 60):
        to_chromium_r, self._to_chromium = _high(os.pipe())
        self._from_chromium, from_chromium_w = _high(os.pipe())
        command = [CHROMIUM, *HEADLESS, "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}", "about:blank"]
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(to_chromium_r), str(from_chromium_w), *command],
            pass_fds=(to_chromium_r, from_chromium_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chromium_r)
        os.close(from_chromium_w)
        self.timeout, self.events, self._next_id = timeout, [], 0
        self._messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chromium, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # Chromium closed its end

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._get()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _get(self) -> dict:
        reply = self._messages.get(timeout=self.timeout)
        if reply is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        return reply

    def wait_for(self, method: str, seconds: float) -> bool:
        """Collect events until one named ``method`` arrives (True) or ``seconds`` pass (False)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                event = self._messages.get(timeout=left)
            except queue.Empty:
                return False
            if event is None:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.events.append(event)
            if event.get("method") == method:
                return True
        return False

    def open_page(self, url: str) -> str:
        """A new tab with console, exceptions and network recorded, then ``url`` loaded; its session."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        if not self.wait_for("Page.loadEventFired", self.timeout):
            raise RuntimeError(f"{url} did not finish loading in {self.timeout} s")
        return session

    def evaluate(self, expression: str, session: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, queue.Empty, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chromium)


def errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries among DevTools events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
    return found


def requests(events: list[dict]) -> list[str]:
    """The URL of every request the page made."""
    return [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
