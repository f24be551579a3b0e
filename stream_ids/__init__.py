"""stream-ids: streaming network-intrusion detection over Kafka."""

__version__ = "0.1.0"
