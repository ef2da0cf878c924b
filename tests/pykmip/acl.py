"""PyKMIP access-control check for akm.

Runs PyKMIP 0.11's ProxyKmipClient as a member of group HR (certificate OU=HR) against a
running akm server holding a group-mode HR key and a group-mode Finance key made by other
identities: the HR key can be fetched, the Finance key answers Permission Denied to every
operation, and Locate never lists it. One line per check; the first failure prints its
reason and exits 1 (tests/it/pykmip_acl.rs looks at the exit code).

Usage:
    acl.py --port N --ca CA --cert CERT --key KEY --hr-uid U1 --finance-uid U2
           --finance-name NAME --version {1.2,1.4,2.0} [--host 127.0.0.1]
           [--config-file EMPTY_FILE]
"""

import argparse
import logging
import sys
import traceback

from kmip.core import enums
from kmip.core.factories import attributes as attribute_factories
from kmip.pie import client as pie_client
from kmip.pie import exceptions as pie_exceptions
from kmip.pie import objects as pie_objects

VERSIONS = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}


class CheckFailed(Exception):
    """A check whose result was not the expected one."""


def check(ok, what, detail=""):
    """Prints `ok <what>` or raises CheckFailed with the detail."""
    if not ok:
        raise CheckFailed("{}: {}".format(what, detail) if detail else what)
    print("ok   {}".format(what), flush=True)


def denied(what, fn):
    """Runs fn, which must fail with Permission Denied."""
    try:
        fn()
    except pie_exceptions.KmipOperationFailure as e:
        check(
            e.reason == enums.ResultReason.PERMISSION_DENIED,
            what + ": Permission Denied",
            "{} ({})".format(e.reason, e.message),
        )
        return
    raise CheckFailed("{}: succeeded but should have been denied".format(what))


def run(args):
    c = pie_client.ProxyKmipClient(
        hostname=args.host,
        port=args.port,
        cert=args.cert,
        key=args.key,
        ca=args.ca,
        config_file=args.config_file,
        kmip_version=VERSIONS[args.version],
    )
    with c:
        got = c.get(args.hr_uid)
        check(
            isinstance(got, pie_objects.SymmetricKey) and len(got.value) == 32,
            "HR member gets the group-HR key",
            type(got).__name__,
        )
        uid, _ = c.get_attributes(args.hr_uid, ["State"])
        check(uid == args.hr_uid, "HR member reads the HR key's attributes")

        denied("get of the Finance key", lambda: c.get(args.finance_uid))
        denied(
            "get_attributes of the Finance key",
            lambda: c.get_attributes(args.finance_uid, ["State"]),
        )
        denied("activate of the Finance key", lambda: c.activate(args.finance_uid))
        denied("destroy of the Finance key", lambda: c.destroy(args.finance_uid))

        found = c.locate()
        check(args.hr_uid in found, "locate lists the HR key", repr(found))
        check(args.finance_uid not in found, "locate never lists the Finance key", repr(found))
        name = attribute_factories.AttributeFactory().create_attribute(
            enums.AttributeType.NAME, args.finance_name
        )
        found = c.locate(attributes=[name])
        check(found == [], "locate by the Finance key's name: nothing", repr(found))
    print("PASS access control, KMIP {}".format(args.version), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--hr-uid", required=True)
    p.add_argument("--finance-uid", required=True)
    p.add_argument("--finance-name", required=True)
    p.add_argument("--version", choices=sorted(VERSIONS), required=True)
    p.add_argument("--config-file", default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    try:
        run(args)
    except CheckFailed as e:
        print("FAIL {}".format(e), flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 -- any client-side error is a failed run
        print("FAIL {}: {}".format(type(e).__name__, e), flush=True)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
