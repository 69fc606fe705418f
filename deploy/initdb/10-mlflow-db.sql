-- The MLflow backend store beside the Dagster database (POSTGRES_DB creates that one).
CREATE DATABASE adflow_mlflow OWNER adflow;
