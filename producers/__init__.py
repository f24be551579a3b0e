"""Producers of the ``flows`` topic: replay of CICIDS2017 CSVs and relay of live CICFlowMeter."""
