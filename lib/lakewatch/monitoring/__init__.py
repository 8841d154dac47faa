"""Monitoring: drift, alert events, evaluation (NAB scoring included) and run reports."""
