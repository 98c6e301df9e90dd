"""Customer value: the transaction summary analysts check against, RFM segments, and lifetime
value from BG/NBD (how often, and whether still alive) with Gamma-Gamma (how much per order).

The summary and the sufficient statistics are computed on Spark; the models' likelihoods are
maximised on the driver with scipy, on customers grouped by their identical summaries.
"""
