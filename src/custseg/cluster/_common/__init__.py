"""What the clustering methods share: base class, validation, defaults, the engine choice.

Modules named ``spark_*`` and ``one_executor`` are the Spark side (they are imported only
by the methods' ``spark`` modules); the others are numpy / scipy only.
"""
