"""Small JSON records in the board's flash: the latched trip and the configuration.

Writes go to a temporary file that is then renamed over the old one, so a reset in the
middle of a write leaves either the old record or the new one, never half of one.
"""

import json
import os

MISSING = object()  # no record stored (a stored `null` is a record: a damaged one)


def load(path):
    """The stored record, or MISSING when there is none. A damaged record raises ValueError.

    A record left only in the temporary file (a reset between removing the old record
    and renaming the new one, on file systems that cannot rename over a file) counts.
    """
    for name in (path, path + ".tmp"):
        try:
            with open(name) as f:
                text = f.read()
        except OSError:
            continue
        return json.loads(text)
    return MISSING


def save(path, record):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(record))
    try:
        os.rename(tmp, path)
    except OSError:  # FAT cannot rename over an existing file; load() reads tmp meanwhile
        os.remove(path)
        os.rename(tmp, path)


def clear(path):
    for name in (path, path + ".tmp"):
        try:
            os.remove(name)
        except OSError:
            pass
