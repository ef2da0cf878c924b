"""pytest plugin for running PyKMIP 0.11's own integration suite against akm.

PyKMIP's suite has no way to choose a KMIP version: its fixtures build KMIPProxy and
ProxyKmipClient from a pykmip.conf section, and the config file has no version key, so the
client speaks its default, KMIP 1.2. To run the unchanged suite at another version this plugin
makes KMIPProxy default to the version named by $AKM_PYKMIP_KMIP_VERSION ("1.2", "1.4",
"2.0"); an explicit kmip_version argument still wins. Nothing else in PyKMIP is changed.

It also writes one line per test, `<outcome> <Class>::<test>` (outcome passed, failed or
skipped), to the file named by $AKM_PYKMIP_RESULTS, so the Rust side compares outcomes with
the exception list without parsing pytest's console output.

Loaded with `pytest -p akm_suite_plugin` (its directory on PYTHONPATH), by tests/it/pykmip_suite.rs.
"""

import os

from kmip.core import enums
from kmip.services import kmip_client

VERSIONS = {
    "1.0": enums.KMIPVersion.KMIP_1_0,
    "1.1": enums.KMIPVersion.KMIP_1_1,
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}

_WANTED = os.environ.get("AKM_PYKMIP_KMIP_VERSION", "1.2")
if _WANTED not in VERSIONS:
    raise RuntimeError("AKM_PYKMIP_KMIP_VERSION={!r} is not one of {}".format(
        _WANTED, sorted(VERSIONS)))

_original_init = kmip_client.KMIPProxy.__init__


def _init_with_version(self, *args, **kwargs):
    if kwargs.get("kmip_version") is None:
        kwargs["kmip_version"] = VERSIONS[_WANTED]
    _original_init(self, *args, **kwargs)


kmip_client.KMIPProxy.__init__ = _init_with_version


def pytest_report_header(config):
    return "akm: PyKMIP clients speak KMIP {}".format(_WANTED)


# Outcome per test, worst phase wins: a failing setup or teardown fails the test.
_outcomes = {}
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def _test_id(nodeid):
    """`path::Class::test` -> `Class::test` (class and test names are unique in the suite)."""
    return nodeid.split("::", 1)[-1]


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        test = _test_id(report.nodeid)
        old = _outcomes.get(test, "passed")
        if _RANK[report.outcome] >= _RANK[old]:
            _outcomes[test] = report.outcome


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("AKM_PYKMIP_RESULTS")
    if not path:
        return
    with open(path, "w") as f:
        for test in sorted(_outcomes):
            f.write("{} {}\n".format(_outcomes[test], test))
