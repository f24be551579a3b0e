"""Keep ``import faust`` from reading this program's command line.

Workaround for a behaviour of faust-streaming (seen in 0.15.3, ``faust/__init__.py``): at import
time it scans ``sys.argv`` with ``_extract_arg_from_argv`` for ``--loop``/``-L`` and
``--datadir``, and when it finds them calls ``mode.loop.use(value)`` and sets
``FAUST_DATADIR`` (meant for ``python app.py --loop uvloop`` scripts; its own comment says
"anything importing faust that also happens to have a '-D' argument in sys.argv will have the
F_DATADIR environment variable set. I think that's ok. [ask]"). For ``stream-ids replay FILES
--loop 2`` that meant ``ModuleNotFoundError: No module named '2'`` (``mode.loop.use`` imports
the event-loop module ``2``) as soon as anything imported faust.

:func:`import_faust` imports faust with ``sys.argv`` reduced to the program name, then checks
that faust still reads ``sys.argv`` the way this works around: if faust no longer has
``_extract_arg_from_argv`` or that function no longer defaults to the list seen at import, it
raises, so an upgrade that changes the behaviour is noticed (and this module can go).
"""

from __future__ import annotations

import inspect
import sys
from types import ModuleType

from stream_ids.errors import StreamIdsError


class FaustArgvCheckError(StreamIdsError):
    """faust no longer reads sys.argv as this workaround assumes: review faust_argv.py."""


def import_faust() -> ModuleType:
    """``faust``, imported without it seeing this program's arguments.

    If faust is already imported, it is returned as is (it read ``sys.argv`` then; callers
    import this first, from :func:`stream_ids.cli.main`).
    """
    if "faust" in sys.modules:
        return sys.modules["faust"]
    program_only = sys.argv[:1]
    saved, sys.argv = sys.argv, program_only
    try:
        import faust
    finally:
        sys.argv = saved
    _check(faust, program_only)
    return faust


def _faust_globals(faust: ModuleType) -> dict:
    """The namespace ``faust/__init__.py`` ran in.

    faust replaces its module in ``sys.modules`` with a lazy-attribute module (class ``_module``)
    whose ``__getattr__`` was defined in, and so keeps, the original namespace.
    """
    getattr_function = getattr(type(faust), "__getattr__", None)
    namespace = getattr(getattr_function, "__globals__", None)
    if isinstance(namespace, dict) and namespace.get("__name__") == "faust":
        return namespace
    return vars(faust)


def _check(faust: ModuleType, seen: list[str]) -> None:
    version = getattr(faust, "__version__", "?")
    extract = _faust_globals(faust).get("_extract_arg_from_argv")
    if extract is None:
        raise FaustArgvCheckError(
            f"faust {version} has no _extract_arg_from_argv any more: check whether importing "
            "it still reads --loop/--datadir from sys.argv, then update or remove "
            "stream_ids/faust_argv.py"
        )
    default = inspect.signature(extract).parameters.get("argv")
    if default is None or default.default is not seen:
        raise FaustArgvCheckError(
            f"faust {version}: _extract_arg_from_argv no longer defaults to sys.argv as read at "
            "import; update or remove stream_ids/faust_argv.py"
        )
