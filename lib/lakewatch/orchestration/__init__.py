"""What the Airflow DAGs share. Nothing here imports pyspark or torch: parsing a DAG must stay cheap."""
