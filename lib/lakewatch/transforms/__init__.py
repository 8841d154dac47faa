"""Fitted transforms applied before a detector: normalisation, and the Spark statistics it is fitted from."""
