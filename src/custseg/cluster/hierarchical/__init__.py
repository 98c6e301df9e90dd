"""Agglomerative clustering: the single-node estimator (``estimator``), SparkHierarchical
(``spark``) and Ward on micro-cluster summaries above the driver limit (``_distributed``)."""
