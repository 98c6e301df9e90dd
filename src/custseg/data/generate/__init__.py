"""A synthetic dataset in the retail-org layout, with planted segments and bad records.

The real retail-org data cannot be downloaded here, and a generator with a known
answer is what clustering needs anyway: every customer with orders belongs to a
planted archetype (written to ``truth/customer_archetypes.csv``), so a later
stage can measure how well a method recovers it.

Generation runs on Spark with the DataFrame API only: ``spark.range(n_blocks)``
and ``mapInArrow``, where block ``b`` draws its customers and orders from
``numpy.random.default_rng([seed, stream, b])`` with vectorised numpy and
builds the CSV and JSON lines with Arrow compute kernels. Ten million
customers are a matter of cores, not of a Python loop on the driver, and the
same seed gives byte-identical files whatever the cluster: a block's content
depends only on the seed and its id, and the number of blocks and output
files only on the number of customers. Each pass (counts, truth, customers,
orders) recomputes only the streams it needs.

Bad records come from streams of their own and are added as extra rows, so
the good rows are byte-identical with or without them; each has exactly one
defect, so ingestion can count them exactly.

The modules, in the order the data flows through them: ``spec`` (what may be
asked for, and its validation), ``scenarios`` (the planted archetypes, the
seed scenario), ``vocabulary`` (word lists), ``catalog`` (products),
``plan`` (a request resolved), ``draws`` (one block's random draws),
``bad_records``, ``blocks`` (good and bad rows of a block), ``text`` (the
lines of the files) and ``writer`` (the Spark jobs and files, ``generate``).

>>> generate(  # doctest: +SKIP
...     spark, "data/raw", customers=1_000, bad_records={"malformed_json": 3}
... )
"""

from custseg.data.generate.plan import BLOCK_CUSTOMERS, BLOCKS_PER_FILE, SINGLE_FILE_MAX
from custseg.data.generate.scenarios import (
    NO_ORDERS,
    RANDOM_LOYALTY,
    RANDOM_TIER,
    REALISTIC,
    SEED,
    Archetype,
)
from custseg.data.generate.spec import (
    BAD_CSV_ID_BASE,
    BAD_RECORD_KINDS,
    CUSTOMER_ID_BASE,
    DAY,
    DESIGN_ORDERS,
    FUTURE_START,
    LOYALTY_THRESHOLDS,
    LOYALTY_VALID_FROM,
    MAX_BAD_RECORDS,
    MAX_CUSTOMERS,
    ORDER_NUMBER_STRIDE,
    PRESETS,
    UNKNOWN_ID_BASE,
    WINDOW_END,
    WINDOW_START,
    validate_bad_records,
)
from custseg.data.generate.writer import GenerateSummary, generate

__all__ = [
    "BAD_CSV_ID_BASE",
    "BAD_RECORD_KINDS",
    "BLOCKS_PER_FILE",
    "BLOCK_CUSTOMERS",
    "CUSTOMER_ID_BASE",
    "DAY",
    "DESIGN_ORDERS",
    "FUTURE_START",
    "LOYALTY_THRESHOLDS",
    "LOYALTY_VALID_FROM",
    "MAX_BAD_RECORDS",
    "MAX_CUSTOMERS",
    "NO_ORDERS",
    "ORDER_NUMBER_STRIDE",
    "PRESETS",
    "RANDOM_LOYALTY",
    "RANDOM_TIER",
    "REALISTIC",
    "SEED",
    "SINGLE_FILE_MAX",
    "UNKNOWN_ID_BASE",
    "WINDOW_END",
    "WINDOW_START",
    "Archetype",
    "GenerateSummary",
    "generate",
    "validate_bad_records",
]
