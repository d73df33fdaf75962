"""Names the DAGs, the jobs and the CLI share, in one light module (no imports: DAG parsing stays fast).

``MODELS`` must equal the CF zoo's registry and ``BACKENDS`` the LLM backends of ``models.llm``
(tests/test_dags.py checks both); models/ cannot import this module, so the test keeps them equal.
"""

NIGHTLY_DAG_ID = "ktrec_nightly"
PROMOTE_DAG_ID = "ktrec_promote"
MODELS = ("bpr", "neumf", "lightgcn", "multvae", "simplex", "sasrec")
VARIANTS = ("baseline", "kt")  # what the nightly DAG trains
BACKENDS = ("template", "transformers", "vllm", "openai")
