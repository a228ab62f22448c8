#!/usr/bin/env python3
"""An agent's shell tool guarded by rampart, written the way the reference project's Python
integration guide ("Securing Python Agents") does it: plain `requests`, a Bearer token,
`POST /v1/tool/exec` with {"agent", "session", "params": {"command"}}, then act on the
`decision`; plus a `preflight()` helper that reads `allowed` from `/v1/preflight/exec`.

This file is client code that must keep working against our daemon unchanged; the Rust
test `daemon/tests/serve_http.rs` runs it against a real `rampart serve`.

Usage:
    RAMPART_URL=http://127.0.0.1:9090 RAMPART_TOKEN=<token> python3 safe_exec.py CMD [CMD...]

For every CMD it prints one JSON line:
    {"command": CMD, "preflight_allowed": bool, "result": {...}}
where result has "ran" (whether the command was executed), "status" (the HTTP status of the
/v1/tool call), "decision", and "exit_code"/"output" (ran), "reason" (deny) or
"approval_id" (ask, the approval is pending and the command did not run).
"""

import json
import os
import subprocess
import sys

import requests

RAMPART_URL = os.environ.get("RAMPART_URL", "http://localhost:9090").rstrip("/")
RAMPART_TOKEN = os.environ.get("RAMPART_TOKEN", "")
AGENT = "python-e2e-agent"
SESSION = "python-e2e-session"


def _auth_headers() -> dict:
    return {"Authorization": f"Bearer {RAMPART_TOKEN}"}


def safe_exec(command: str) -> dict:
    """Asks rampart about a shell command, and runs it only if the answer says so."""
    response = requests.post(
        f"{RAMPART_URL}/v1/tool/exec",
        headers=_auth_headers(),
        json={
            "agent": AGENT,
            "session": SESSION,
            "params": {"command": command},
        },
        timeout=30,
    )
    result = response.json()
    decision = result.get("decision")

    if decision in ("allow", "watch"):
        # Rampart only decides; the agent runs the command itself.
        completed = subprocess.run(command, shell=True, capture_output=True, text=True)
        return {
            "ran": True,
            "status": response.status_code,
            "decision": decision,
            "exit_code": completed.returncode,
            "output": completed.stdout,
        }
    if decision == "deny":
        return {
            "ran": False,
            "status": response.status_code,
            "decision": decision,
            "blocked": True,
            "reason": result.get("message", ""),
        }
    if decision == "ask":
        # A human has to approve first: report it instead of running the command.
        return {
            "ran": False,
            "status": response.status_code,
            "decision": decision,
            "pending": True,
            "approval_id": result.get("approval_id"),
            "reason": result.get("message", ""),
        }
    # Anything unexpected fails closed.
    return {
        "ran": False,
        "status": response.status_code,
        "decision": decision,
        "error": f"unexpected answer: {result!r}",
    }


def preflight(command: str) -> bool:
    """Whether rampart would allow a command, without running it."""
    response = requests.post(
        f"{RAMPART_URL}/v1/preflight/exec",
        headers=_auth_headers(),
        json={
            "agent": AGENT,
            "session": SESSION,
            "params": {"command": command},
        },
        timeout=30,
    )
    return response.json()["allowed"]


def main(commands) -> int:
    for command in commands:
        allowed = preflight(command)
        result = safe_exec(command)
        print(
            json.dumps(
                {"command": command, "preflight_allowed": allowed, "result": result}
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
