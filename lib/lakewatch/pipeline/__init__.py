"""One function per job (validate, train, score, ...): what the CLI, spark-submit jobs and DAGs call."""
