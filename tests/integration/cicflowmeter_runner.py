"""Run the Python ``cicflowmeter`` (0.5.0) on a pcap, writing CSV rows as flows expire.

Its console script passes arguments to ``create_sniffer`` in the wrong positions (0.5.0 crashes
with ``'bool' object has no attribute 'split'``), so this calls the same functions with keywords,
then does what its ``main`` does: join the sniffer, stop the GC thread, flush the last flows.

    .venv-cicflowmeter/bin/python cicflowmeter_runner.py capture.pcap flows.csv
"""

import sys

from cicflowmeter.sniffer import create_sniffer


def main() -> None:
    sniffer, session = create_sniffer(
        input_file=sys.argv[1], input_interface=None, output_mode="csv", output=sys.argv[2]
    )
    sniffer.start()
    try:
        sniffer.join()
    finally:
        session._gc_stop.set()
        session._gc_thread.join(timeout=2.0)
        session.flush_flows()


if __name__ == "__main__":
    main()
