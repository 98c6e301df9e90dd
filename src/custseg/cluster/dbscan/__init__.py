"""DBSCAN: the single-node estimator (``estimator``), SparkDBSCAN (``spark``) and the
exact distributed fit's steps (``_distributed`` and the private modules it calls)."""
