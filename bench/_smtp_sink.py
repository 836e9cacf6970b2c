"""A loopback SMTP sink for the send benchmark, run in its own process.

    python bench/_smtp_sink.py PORT OUT_DIR

aiosmtpd on 127.0.0.1:PORT; every message accepted is written to OUT_DIR/<n>.eml (its raw
bytes, as received) so that the reference can send the very same messages again, and its
size is appended to OUT_DIR/sizes.txt. Prints "ready" on stdout once listening; stops on
SIGTERM. Running it in a separate process keeps the server off the sender's GIL.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.count = 0
        self.sizes = (out / "sizes.txt").open("a", buffering=1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        self.count += 1
        (self.out / f"{self.count}.eml").write_bytes(data)
        self.sizes.write(f"{len(data)}\n")
        return "250 OK"


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port,
                            data_size_limit=64 * 2**20)  # fmt: skip
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
