"""k-means: the single-node estimator (``estimator``, scikit-learn's KMeans) and SparkKMeans
(``spark``, Spark ML's k-means above the driver limit)."""
