"""Helpers for firmware tests, which run on the MicroPython Unix port.

Test files here are plain MicroPython modules with `test_*` functions and bare asserts;
tests/firmware/conftest.py runs each file in one `micropython` process and reports every
test to pytest by name.
"""


def req(*ids):
    """Mark a test with the safety requirements (docs/safety.md) it proves.

    The pytest side reads these marks from the source (MicroPython functions take no
    attributes, so here the decorator changes nothing).
    """

    def mark(fn):
        return fn

    return mark


def raises(exc, fn, *args, **kwargs):
    """Call fn and return the exception of type exc it raised; fail if it raised none."""
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    raise AssertionError("%s not raised by %s" % (exc.__name__, fn.__name__))


def near(a, b, tol):
    return abs(a - b) <= tol
