"""Everything stream-ids does because of a faust-streaming bug or cost, one module per issue.

Each module names its upstream issue in its docstring; removing a fix after an upstream release
means deleting its module (and its lines below and in :data:`.checks.INTERNALS`). Only this
package reads Faust's (and aiokafka's) private attributes (tests/unit/test_import_rules.py), and
:func:`check_internals`, called when the worker app is built, fails loudly if one is missing.

- :mod:`.held_acks`: events held back from Faust's ack until published (faust#189);
- :mod:`.offset_holes` + :mod:`.hole_filling`: offsets Faust's recovery lost, read from Kafka;
  commits a recovery race held, freed (faust#596, faust#312);
- :mod:`.duplicate_acks`: offsets acked twice, which held Faust's commits back
  (robinhood/faust#625);
- :mod:`.recovery_stall`: a changelog partition whose recovery stopped, read again (faust#155);
- :mod:`.record_batches` + :mod:`.changelog_batches`: records sent as whole record batches
  past Faust's per-record sends and table writes (faust#108, robinhood/faust#718);
- :mod:`.log_noise`: two log messages filtered.

The interface the worker uses: :func:`check_internals` and :func:`install_duplicate_acks_fix`
(start-up), :func:`offset_hooks` +
:func:`connect` (build_worker), :func:`hold_back` / :func:`release` and :class:`HoleFiller`
(the batch scorer), :class:`StateWriter` and :class:`RecordBatchSender` (host state, publish),
:func:`install_log_filters` (the app).
"""

from __future__ import annotations

from stream_ids.faust_fixes.changelog_batches import StateWriter, table_store
from stream_ids.faust_fixes.checks import check_internals
from stream_ids.faust_fixes.duplicate_acks import install as install_duplicate_acks_fix
from stream_ids.faust_fixes.held_acks import hold_back, release
from stream_ids.faust_fixes.hole_filling import (
    FilledEvent,
    HoleFiller,
    committed_offsets_of,
    done_message,
    lowest_acked_of,
    read_offsets_of,
)
from stream_ids.faust_fixes.log_noise import install_log_filters
from stream_ids.faust_fixes.offset_holes import CHECK_S, HoleReader, OffsetGuard
from stream_ids.faust_fixes.record_batches import RecordBatchSender, record_batch_sender
from stream_ids.faust_fixes.recovery_stall import RecoveryWatch
from stream_ids.faust_fixes.worker_hooks import OffsetHooks, connect, offset_hooks

__all__ = [
    "CHECK_S", "FilledEvent", "HoleFiller", "HoleReader", "OffsetGuard", "OffsetHooks",
    "RecordBatchSender", "RecoveryWatch", "StateWriter", "check_internals",
    "committed_offsets_of", "connect", "done_message", "hold_back",
    "install_duplicate_acks_fix", "install_log_filters",
    "lowest_acked_of", "offset_hooks", "read_offsets_of", "record_batch_sender", "release",
    "table_store",
]
