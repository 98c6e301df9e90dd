"""HDBSCAN: the single-node estimator (``estimator``), SparkHDBSCAN (``spark``) and the
summarised distributed fit (``_distributed``: bubbles, cells, the bubble tree)."""
