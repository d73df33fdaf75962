-- Databases of the servers profile (infra/compose.yaml runs this once, on an empty data volume).
CREATE DATABASE ktrec_airflow;
CREATE DATABASE ktrec_mlflow;
CREATE DATABASE ktrec_feast;
