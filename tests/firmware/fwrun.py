"""Runs the named test functions of one firmware test file on MicroPython.

Usage: micropython fwrun.py REPO_ROOT TEST_FILE NAME [NAME ...]
Prints one marker line per test; the pytest plugin (conftest.py) reads them.
"""
import sys

root, path, names = sys.argv[1], sys.argv[2], sys.argv[3:]
folder, _, filename = path.rpartition("/")
sys.path[:] = [folder, root + "/firmware", root + "/hil/device", root + "/boards", root + "/tests/firmware", ""]

module = __import__(filename[:-3])
for name in names:
    print("@@TG-START " + name)
    try:
        getattr(module, name)()
    except BaseException as e:  # noqa: BLE001 - every failure is reported, then the run goes on
        sys.print_exception(e)
        print("@@TG-FAIL " + name)
    else:
        print("@@TG-PASS " + name)
