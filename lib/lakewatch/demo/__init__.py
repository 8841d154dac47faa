"""Demo data: the generated operations dataset, and the NAB subset."""
