"""`discharge-edge opcua cert --dir DIR [--renew] [--days N] [--hostname H] [--json]`: make (or
check) the OPC UA server's certificate and key at install (edge/opcua/certs.py).

Owns the subcommand (entry point `opcua = "edge.opcua.cli:register"` in the
`discharge_edge.commands` group). An existing pair is kept and checked (exit 0, its thumbprint
printed: give it to the SCADA to trust); `--renew` makes a new one (the SCADA must trust it
again). Exit codes: 0 made or kept, 1 refused (one file without the other, a key others may read,
a key that is not the certificate's), 2 bad usage. Tests: tests/edge/opcua/test_certs.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("opcua", help="the OPC UA server's certificate (made at install)")
    actions = p.add_subparsers(dest="opcua_action", metavar="ACTION", required=True)
    c = actions.add_parser("cert", help="make the server's certificate and key in DIR, or check the ones there")
    c.add_argument("--dir", type=Path, required=True, metavar="DIR",
                   help="where server_cert.der and server_key.pem live (the server's default: <state dir>/opcua)")
    c.add_argument("--renew", action="store_true", help="make a new pair even when one is there")
    c.add_argument("--days", type=int, default=None, metavar="N", help="validity of a new certificate, days "
                   "(default 3650)")
    c.add_argument("--hostname", default=None, help="the host's name in the certificate (default: this host's)")
    c.add_argument("--json", action="store_true", help="one JSON object on stdout")
    c.set_defaults(func=cmd_cert)


def cmd_cert(args: argparse.Namespace) -> int:
    from edge.opcua.certs import CERT_DAYS, CertificateError, ensure_certificate

    try:
        cert = ensure_certificate(args.dir, hostname=args.hostname, days=args.days or CERT_DAYS, renew=args.renew)
    except CertificateError as exc:
        print(f"discharge-edge opcua cert: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"discharge-edge opcua cert: {args.dir}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        from edge.cli import print_json

        print_json(cert.to_dict())
    else:
        print(f"discharge-edge opcua cert: {'made' if cert.created else 'kept'} {cert.cert_path} "
              f"({cert.application_uri}, valid {cert.days_left:.0f} more days, SHA-1 thumbprint "
              f"{cert.thumbprint_sha1}); key {cert.key_path}", file=sys.stderr)
    return 0
