#!/usr/bin/env python3
"""Runs moto's server in this process for rootwarden's contract test.

moto answers the AWS APIs rootwarden calls (STS, IAM, Organizations). A root user's
access key cannot be made through any AWS API, so its presence is set here, on
moto's IAM backend, which only a server in this process can reach.

Protocol (one line each way, on stdin and stdout):
  start         prints "port N" once the server answers on 127.0.0.1:N
  root-keys ACCOUNT 0|1
                sets IAM GetAccountSummary's AccountAccessKeysPresent in ACCOUNT;
                answers "ok", or "error: …"
  end of stdin  stops the server and exits 0 (so a test that dies cannot leak it)

Exit 3, with one line on stderr, when moto is missing or is not the version this
contract was written against.
"""
import sys

WANT = "5.2.1"

try:
    import moto
except ImportError as e:
    print(f"launcher.py: moto is not installed ({e}); want moto {WANT}", file=sys.stderr)
    sys.exit(3)
if moto.__version__ != WANT:
    print(f"launcher.py: moto {moto.__version__} is installed; this contract is written against moto {WANT}",
          file=sys.stderr)
    sys.exit(3)

import logging

from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer


def set_root_keys(account: str, present: str) -> str:
    if len(account) != 12 or not account.isdigit():
        return f"error: {account!r} is not a 12-digit account id"
    if present not in ("0", "1"):
        return f"error: presence {present!r} is not 0 or 1"
    # moto 5.2.1 models the account summary's root-user entries as fixed fields of
    # AccountSummary (moto/iam/models.py); there is no root user to give a key.
    iam_backends[account]["aws"].account_summary._account_access_keys_present = int(present)
    return "ok"


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"port {port}", flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "root-keys" and len(words) == 3:
                answer = set_root_keys(words[1], words[2])
            else:
                answer = f"error: unknown command {line.strip()!r} (want: root-keys ACCOUNT 0|1)"
            print(answer, flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
