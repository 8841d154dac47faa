"""Input data: the dataset spec, intervals, quality rules, labels and the training sample."""
