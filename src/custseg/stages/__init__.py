"""The stages of a run, one module each (ingest, features, segment, score), and the chain that
runs them.

Each stage is ``stage(spark, config, progress) -> StageReport``: it reads its
inputs from the lakehouse, writes its outputs there and reports what it did.
"""
