"""The shared core every stage imports, importing nothing of the project itself.

Enters: the environment (``KTREC_*`` variables, a YAML profile). Leaves: the :class:`~jobs.core.settings.Settings`
object (``settings``), the lake's table locations, data contracts and atomic publication (``lake``), the one
lake-table reader (``spark.read_table``, with its "run `ktrec X` first" error), the SparkSession builder
(``spark``) and atomic file/folder writes (``files``).
"""
