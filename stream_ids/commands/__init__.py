"""One module per ``stream-ids`` subcommand; see :mod:`stream_ids.cli`."""
