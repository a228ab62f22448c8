#!/usr/bin/env python3
"""Connects to the daemon's Unix socket as another user and sends one request frame.

Usage (as root): python3 foreign_peer.py SOCKET_PATH HEX_FRAME [UID]

Drops to UID (default 65534, "nobody"), connects, sends the frame, and reads until the
daemon closes the connection. Prints one JSON line:
    {"uid": int, "connected": bool, "reply_bytes": int, "error": str|null}
Exit status 0 when the report was printed, 2 when privileges could not be dropped.
"""

import json
import os
import socket
import sys


def main() -> int:
    path, frame_hex = sys.argv[1], sys.argv[2]
    uid = int(sys.argv[3]) if len(sys.argv) > 3 else 65534
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError as e:
        print(json.dumps({"uid": os.getuid(), "connected": False, "reply_bytes": 0,
                          "error": f"cannot drop privileges: {e}"}))
        return 2

    report = {"uid": os.getuid(), "connected": False, "reply_bytes": 0, "error": None}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(path)
        report["connected"] = True
        try:
            s.sendall(bytes.fromhex(frame_hex))
        except OSError:
            pass  # the daemon may already have closed the connection
        received = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        report["reply_bytes"] = len(received)
    except OSError as e:
        report["error"] = str(e)
    finally:
        s.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
